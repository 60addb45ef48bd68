/**
 * The README's usage example is examples/usage.ts, pasted into the README by
 * `pnpm readme-examples`; here it runs as written. The demo model must find the pass key the
 * example hid at three times its trained context (greedy, so the same answer every run).
 */
import { expect, it, vi } from "vitest";

it("runs examples/usage.ts: the pass key comes back from 797 prompt tokens", async () => {
  const lines: string[] = [];
  const log = vi.spyOn(console, "log").mockImplementation((...values: unknown[]) => {
    lines.push(values.join(" "));
  });
  try {
    await import("../examples/usage.js");
  } finally {
    log.mockRestore();
  }
  expect(lines).toContain("answer: 71432.");
});
