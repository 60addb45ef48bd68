/**
 * The README's usage example is examples/usage.ts, pasted into the README by
 * `pnpm readme-examples`; here it runs as written. The demo model must find the pass key the
 * example hid at three times its trained context (greedy, so the same answer every run).
 */
import { consoleLinesOf } from "@self-extend/test-fixtures";
import { expect, it } from "vitest";

it("runs examples/usage.ts: the pass key comes back from 797 prompt tokens", async () => {
  const lines = await consoleLinesOf(() => import("../examples/usage.js"));
  expect(lines).toContain("answer: 71432.");
});

it("runs examples/chat.ts: a document past the trained context, then a second turn on the same history", async () => {
  const lines = await consoleLinesOf(() => import("../examples/chat.js"));
  const firstTurn = Number(/^read (\d+) tokens$/.exec(lines[0] ?? "")?.[1]);
  expect(firstTurn).toBeGreaterThan(256);
  expect(lines[1]).toMatch(/^stop reason: (max-tokens|end-of-generation|stop-trigger), \d+ tokens$/);
  expect(lines[2]).toMatch(/^answer: \S/);
  const secondTurn = Number(/^second turn evaluated (\d+) new prompt tokens$/.exec(lines[3] ?? "")?.[1]);
  expect(secondTurn).toBeGreaterThan(0);
  expect(secondTurn).toBeLessThan(firstTurn);
});
