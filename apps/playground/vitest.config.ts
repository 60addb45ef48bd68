import { defineWorkspaceProject } from "../../vitest.project.js";

export default defineWorkspaceProject("playground", { testTimeout: 240_000 });
