/**
 * The README's API example is examples/passkey.ts, pasted by `pnpm readme-examples`; here it runs
 * as written. At twice the demo model's trained context Self-Extend finds every key and plain
 * attention none (the model card's measurement; greedy, so the same every run).
 */
import { consoleLinesOf } from "@self-extend/test-fixtures";
import { expect, it } from "vitest";

it("runs examples/passkey.ts: Self-Extend 2/2, plain 0/2 at 512 tokens", async () => {
  const lines = await consoleLinesOf(() => import("../examples/passkey.js"));
  expect(lines[0]).toMatch(/^512 tokens, Self-Extend G=\d+ W=\d+: 2\/2$/);
  expect(lines[1]).toBe("512 tokens, plain: 0/2");
  expect(lines[2]).toMatch(/^heatmap: \d+ characters of SVG$/);
});
