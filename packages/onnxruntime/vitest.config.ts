import { defineWorkspaceProject } from "../../vitest.project.js";

export default defineWorkspaceProject("onnxruntime", { testTimeout: 120000 });
