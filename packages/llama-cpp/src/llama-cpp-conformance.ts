/**
 * What the conformance suite (@self-extend/conformance) needs to know about this adapter: its
 * tolerances and skips (conformance/*.json, in the suite's schemas) and its extra run in
 * fast-prefill mode, measured and reported apart from pass/fail.
 */
import type { SelfExtendConfig } from "@self-extend/core";
import { fastPrefillPositionError } from "./fast-prefill-scheduler.js";

export const conformanceDeclaration = {
  tolerancesPath: new URL("../conformance/tolerances.json", import.meta.url),
  skipsPath: new URL("../conformance/skips.json", import.meta.url),
  variants: [
    {
      label: "llama-cpp:fast-prefill",
      sessionOptions: { mode: "fast-prefill" as const },
      informational: {
        why: "fast-prefill: batched prompt with a bounded, documented deviation from exact (decoding stays exact); measured, not counted",
        // Chunks of G tokens, the adapter's default chunk size.
        describe: ({ groupSize }: SelfExtendConfig) =>
          `chunk ${groupSize} = G: largest position error ${fastPrefillPositionError(groupSize, groupSize)}`,
      },
    },
  ],
};
