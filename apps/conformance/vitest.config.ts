import { defineWorkspaceProject } from "../../vitest.project.js";

export default defineWorkspaceProject("conformance-app", { testTimeout: 600000 });
