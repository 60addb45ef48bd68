import { defineWorkspaceProject } from "../../vitest.project.js";

export default defineWorkspaceProject("webgpu", { testTimeout: 120000 });
