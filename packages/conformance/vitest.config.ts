import { defineWorkspaceProject } from "../../vitest.project.js";

export default defineWorkspaceProject("conformance", { testTimeout: 300000 });
