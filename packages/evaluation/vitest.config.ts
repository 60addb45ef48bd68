import { defineWorkspaceProject } from "../../vitest.project.js";

export default defineWorkspaceProject("evaluation", { testTimeout: 120_000 });
