import { vi } from "vitest";

/**
 * Runs `load` (an example module's dynamic import, which runs it) and returns what it printed
 * with console.log, one entry per call: README examples report through console.log, and their
 * tests check those lines.
 */
export async function consoleLinesOf(load: () => Promise<unknown>): Promise<string[]> {
  const lines: string[] = [];
  const log = vi.spyOn(console, "log").mockImplementation((...values: unknown[]) => {
    lines.push(values.join(" "));
  });
  try {
    await load();
  } finally {
    log.mockRestore();
  }
  return lines;
}
