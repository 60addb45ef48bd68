/**
 * The README's API example is examples/passkey.ts, pasted by `pnpm readme-examples`; here it runs
 * as written. At twice the demo model's trained context Self-Extend finds every key and plain
 * attention none (the model card's measurement; greedy, so the same every run).
 */
import { expect, it, vi } from "vitest";

it("runs examples/passkey.ts: Self-Extend 2/2, plain 0/2 at 512 tokens", async () => {
  const lines: string[] = [];
  const log = vi.spyOn(console, "log").mockImplementation((...values: unknown[]) => {
    lines.push(values.join(" "));
  });
  try {
    await import("../examples/passkey.js");
  } finally {
    log.mockRestore();
  }
  expect(lines[0]).toMatch(/^512 tokens, Self-Extend G=\d+ W=\d+: 2\/2$/);
  expect(lines[1]).toBe("512 tokens, plain: 0/2");
  expect(lines[2]).toMatch(/^heatmap: \d+ characters of SVG$/);
});
