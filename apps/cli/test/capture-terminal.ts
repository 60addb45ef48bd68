import type { Terminal } from "../src/index.js";

export function captureTerminal(): Terminal & { stdout: string; stderr: string } {
  const captured = {
    stdout: "",
    stderr: "",
    interactive: false,
    out(text: string) {
      captured.stdout += text;
    },
    error(text: string) {
      captured.stderr += text;
    },
  };
  return captured;
}
