import { defineWorkspaceProject } from "../../vitest.project.js";

export default defineWorkspaceProject("backends", { testTimeout: 120000 });
