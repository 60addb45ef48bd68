import { defineWorkspaceProject } from "../../vitest.project.js";

export default defineWorkspaceProject("llama-cpp", { testTimeout: 120000 });
