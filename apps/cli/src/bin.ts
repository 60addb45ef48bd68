#!/usr/bin/env node
import { runCli } from "./main.js";

runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // Unexpected: a bug on our side. Keep the stack so it can be reported.
    process.stderr.write(`self-extend: internal error: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exitCode = 70;
  },
);
