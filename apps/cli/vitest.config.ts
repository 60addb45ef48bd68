import { defineWorkspaceProject } from "../../vitest.project.js";

// Some tests run whole models through every backend: minutes on a loaded 2-core machine.
export default defineWorkspaceProject("cli", { testTimeout: 600000 });
