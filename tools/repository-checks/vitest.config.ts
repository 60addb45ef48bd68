import { defineWorkspaceProject } from "../../vitest.project.js";

export default defineWorkspaceProject("repository-checks");
