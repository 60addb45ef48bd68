import { SelfExtendError } from "@self-extend/core";
import { CliUsageError } from "./cli-error.js";
import type { Command } from "./command.js";
import { commands } from "./commands/index.js";
import { processTerminal, type Terminal } from "./terminal.js";

function overview(): string {
  const width = Math.max(...commands.map((command) => command.name.length));
  return `self-extend: Self-Extend (Jin et al. 2024) long-context attention for JavaScript runtimes

Usage: self-extend <command> [flags]

Commands:
${commands.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`).join("\n")}

Run \`self-extend <command> --help\` for a command's flags.
`;
}

function isSystemError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).syscall === "string";
}

/** Runs the CLI and returns the exit code: 0 success, 1 failure of the work, 2 a usage mistake, 130 interrupted. */
export async function runCli(args: readonly string[], terminal: Terminal = processTerminal): Promise<number> {
  // `pnpm conformance -- --json` passes the separator through; no command takes positionals.
  const [name, ...rest] = args.filter((argument) => argument !== "--");
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    terminal.out(overview());
    return name === undefined ? 2 : 0;
  }
  const command: Command | undefined = commands.find((candidate) => candidate.name === name);
  if (command === undefined) {
    terminal.error(
      `self-extend: unknown command ${JSON.stringify(name)}; commands: ${commands.map((c) => c.name).join(", ")}\n`,
    );
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    terminal.out(`${command.usage}\n`);
    return 0;
  }
  try {
    return await command.run(rest, terminal);
  } catch (error) {
    if (error instanceof CliUsageError) {
      terminal.error(`self-extend ${command.name}: ${error.message}\n`);
      return 2;
    }
    if (error instanceof SelfExtendError || error instanceof RangeError) {
      terminal.error(`self-extend ${command.name}: ${error.message}\n`);
      return 1;
    }
    if (isSystemError(error)) {
      // A file-system failure during the work (disk full, a file removed meanwhile): one line.
      terminal.error(`self-extend ${command.name}: ${error.message.split("\n")[0]}\n`);
      return 1;
    }
    if ((error as Error)?.name === "AbortError") {
      terminal.error(`self-extend ${command.name}: interrupted\n`);
      return 130;
    }
    throw error;
  }
}
