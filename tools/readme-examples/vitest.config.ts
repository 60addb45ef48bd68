import { defineWorkspaceProject } from "../../vitest.project.js";

export default defineWorkspaceProject("readme-examples");
