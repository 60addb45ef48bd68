export type { Command } from "./command.js";
export { runCli } from "./main.js";
export type { Terminal } from "./terminal.js";
