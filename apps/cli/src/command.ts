import type { Terminal } from "./terminal.js";

export interface Command {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** Full `--help` text. */
  readonly usage: string;
  /** Returns the exit code. Throws CliUsageError or a SelfExtendError for bad input. */
  run(args: readonly string[], terminal: Terminal): Promise<number>;
}
