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
