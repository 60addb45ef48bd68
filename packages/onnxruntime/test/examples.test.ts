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

it("runs examples/chat.ts: a chat answer after a document of about 3x the trained context, then a reused history", async () => {
  const lines = await consoleLinesOf(() => import("../examples/chat.js"));
  const read = Number(/^read (\d+) tokens$/.exec(lines.find((line) => line.startsWith("read ")) ?? "")?.[1]);
  expect(read).toBeGreaterThan(2.5 * 256);
  expect(lines).toContain("stop reason: max-tokens, 24 tokens");
  const secondTurn = Number(/^second turn evaluated (\d+) new prompt tokens$/.exec(lines.at(-1) ?? "")?.[1]);
  expect(secondTurn).toBeGreaterThan(0);
  expect(secondTurn).toBeLessThan(60);
});

it("runs examples/imported-export.ts: an Optimum export at 4x its trained context, planned and generated", async () => {
  const lines = await consoleLinesOf(() => import("../examples/imported-export.js"));
  const [, prompt, trained] = /^(\d+) prompt tokens, trained context (\d+)$/.exec(lines[0] ?? "") ?? [];
  expect(Number(trained)).toBe(128);
  expect(Number(prompt)).toBeGreaterThan(4 * 128);
  expect(lines[1]).toMatch(/^G = \d+, W = \d+, 16 tokens generated$/);
});
