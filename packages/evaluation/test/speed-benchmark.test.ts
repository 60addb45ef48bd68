import type {
  ModelInfoV1,
  SelfExtendModelV1,
  SelfExtendSessionV1,
  SessionOptionsV1,
} from "@self-extend/core";
import { describe, expect, it } from "vitest";
import { deterministicPromptTokens, runSpeedBenchmark } from "../src/index.js";
import {
  decodeBlockTokens,
  prefillSegments,
  promptSegments,
  shortestPrefillSegment,
} from "../src/speed-benchmark.js";

// A model that computes nothing: its sessions record what the benchmark asks of them and advance a
// clock of the test's own by a cost the test sets. The clock makes the measured times known in
// advance, so the benchmark's arithmetic is checked against hand-computed values; no test here
// reads real time. L = 9000, so a 2 x L context has a prompt of 17980 tokens: eight parts.
const trainedContext = 9000;
const selfExtend = { groupSize: 4, neighborWindow: 64 };

type Side = "plain" | "selfExtend";
interface Event {
  readonly side: Side;
  readonly session: number;
  readonly call: "create" | "evaluate" | "decode" | "reset" | "dispose";
  readonly tokens?: readonly number[];
  readonly logits?: unknown;
}
/** Milliseconds a call costs on the test's clock, told the clock's time when the call starts. */
type Cost = (side: Side, call: "evaluate" | "decode", tokens: number, time: number, step: number) => number;

function recordingModel(cost: Cost) {
  const events: Event[] = [];
  let time = 0;
  let sessions = 0;
  const decodeSteps: Record<Side, number> = { plain: 0, selfExtend: 0 };
  const info: ModelInfoV1 = {
    architecture: "llama",
    trainedContext,
    vocabularySize: 32000,
    layerCount: 1,
    headCount: 1,
    kvHeadCount: 1,
    headSize: 8,
  };
  const model = {
    info,
    async createSession(options: SessionOptionsV1): Promise<SelfExtendSessionV1> {
      const side: Side = options.selfExtend.groupSize === 1 ? "plain" : "selfExtend";
      const id = sessions++;
      events.push({ side, session: id, call: "create" });
      return {
        options,
        tokenCount: 0,
        cacheBytes: side === "plain" ? 1000 : 1500,
        async evaluate(tokens: ArrayLike<number>, evaluateOptions?: { logits?: unknown }) {
          events.push({
            side,
            session: id,
            call: "evaluate",
            tokens: Array.from(tokens),
            logits: evaluateOptions?.logits,
          });
          time += cost(side, "evaluate", tokens.length, time, 0);
          return {} as never;
        },
        async decode(token: number) {
          events.push({ side, session: id, call: "decode", tokens: [token] });
          time += cost(side, "decode", 1, time, decodeSteps[side]++);
          return new Float32Array(1);
        },
        async reset() {
          events.push({ side, session: id, call: "reset" });
        },
        async dispose() {
          events.push({ side, session: id, call: "dispose" });
        },
      } as unknown as SelfExtendSessionV1;
    },
    async dispose() {},
  } as SelfExtendModelV1;
  return { model, events, now: () => time };
}

describe("runSpeedBenchmark: both sessions side by side", () => {
  it("feeds both open sessions the whole prompt in parts and then the decode in blocks, taking turns", async () => {
    const { model, events, now } = recordingModel(() => 1);
    const decodeTokens = 20;
    const [row] = await runSpeedBenchmark(model, {
      selfExtend,
      multiples: [2],
      decodeTokens,
      repeats: 1,
      now,
    });
    const prompt = deterministicPromptTokens(
      2 * trainedContext - decodeTokens,
      model.info.vocabularySize,
      11,
    );

    // Both sessions open before either measured call, and closed only after the last one.
    const calls = events.map((event) => event.call);
    expect(calls.lastIndexOf("create")).toBeLessThan(calls.indexOf("decode"));
    expect(calls.filter((call) => call === "create")).toHaveLength(2);
    expect(calls.slice(-2)).toEqual(["dispose", "dispose"]);
    expect([row.plain.cacheBytes, row.selfExtend.cacheBytes]).toEqual([1000, 1500]);

    // After its reset (the warm-up is before it), each session was fed exactly the prompt, in
    // eight parts, logits only for the last part, then the 20 decoded tokens.
    const measured = events.filter((event) => event.call === "evaluate" || event.call === "decode");
    const afterReset = (side: Side) => {
      const resetAt = events.findIndex((event) => event.side === side && event.call === "reset");
      return events.slice(resetAt + 1).filter((event) => event.side === side && event.call !== "dispose");
    };
    for (const side of ["plain", "selfExtend"] as const) {
      const own = afterReset(side);
      const parts = own.filter((event) => event.call === "evaluate");
      expect(parts).toHaveLength(prefillSegments);
      expect(parts.flatMap((event) => event.tokens)).toEqual(prompt);
      expect(parts.map((event) => event.logits)).toEqual([
        ...Array(prefillSegments - 1).fill("none"),
        "last",
      ]);
      expect(own.filter((event) => event.call === "decode").map((event) => event.tokens?.[0])).toEqual(
        prompt.slice(0, decodeTokens),
      );
    }

    // Turns: part k goes to plain first when k is even, to Self-Extend first when odd; decode
    // blocks of 8 tokens (8, 8, 4) likewise.
    const order = measured.slice(measured.length - 2 * prefillSegments - 2 * decodeTokens);
    const prefillOrder = order.slice(0, 2 * prefillSegments).map((event) => event.side);
    expect(prefillOrder).toEqual(
      Array.from({ length: prefillSegments }, (_, turn) =>
        turn % 2 === 0 ? ["plain", "selfExtend"] : ["selfExtend", "plain"],
      ).flat(),
    );
    const decodeOrder = order.slice(2 * prefillSegments).map((event) => event.side);
    const block = (side: Side, length: number) => Array<Side>(length).fill(side);
    expect(decodeBlockTokens).toBe(8);
    expect(decodeOrder).toEqual([
      ...block("plain", 8),
      ...block("selfExtend", 8),
      ...block("selfExtend", 8),
      ...block("plain", 8),
      ...block("plain", 4),
      ...block("selfExtend", 4),
    ]);
  });

  it("cuts only prompts of two parts' worth, into at most eight parts of 2048 tokens or more", () => {
    expect(shortestPrefillSegment).toBe(2048);
    // The demo model's 8x prompt (2016 tokens) and anything under 2 x 2048 stay one call.
    expect(promptSegments(2016)).toEqual([[0, 2016]]);
    expect(promptSegments(4095)).toEqual([[0, 4095]]);
    expect(promptSegments(4096)).toEqual([
      [0, 2048],
      [2048, 4096],
    ]);
    expect(promptSegments(6000)).toEqual([
      [0, 3000],
      [3000, 6000],
    ]);
    // 17980 / 8 = 2247.5: boundaries at floor(k x 2247.5).
    expect(promptSegments(17980)).toEqual([
      [0, 2247],
      [2247, 4495],
      [4495, 6742],
      [6742, 8990],
      [8990, 11237],
      [11237, 13485],
      [13485, 15732],
      [15732, 17980],
    ]);
    // A 32k-token prompt (8 x L = 4096, less 128 decoded tokens): eight parts of 4080.
    expect(promptSegments(32640).map(([start, end]) => end - start)).toEqual(Array(8).fill(4080));
  });

  it("keeps the fastest prefill and the median decode step, against hand-computed times", async () => {
    // Prefill: 0.01 ms a token plain, 0.013 with Self-Extend, the second repeat 1.5x slower.
    // Decode: 2 ms a step plain, 3 with Self-Extend, but plain's 3rd step stalls (50 ms) and
    // Self-Extend's 7th (100 ms): a mean would count them, the median does not.
    let evaluateCalls = 0;
    const { model, now } = recordingModel((side, call, tokens, _time, step) => {
      if (call === "evaluate") {
        evaluateCalls++;
        // Each repeat: 2 warm-up calls, then 16 parts; repeat 2 starts at call 19.
        const slow = evaluateCalls > 18 ? 1.5 : 1;
        return tokens * (side === "plain" ? 0.01 : 0.013) * slow;
      }
      if (side === "plain") return step === 2 ? 50 : 2;
      return step === 6 ? 100 : 3;
    });
    const [row] = await runSpeedBenchmark(model, {
      selfExtend,
      multiples: [2],
      decodeTokens: 10,
      repeats: 2,
      now,
    });
    const promptLength = 2 * trainedContext - 10;
    expect(row.plain.prefillTokensPerSecond).toBeCloseTo(promptLength / (promptLength * 0.01e-3), 6);
    expect(row.selfExtend.prefillTokensPerSecond).toBeCloseTo(promptLength / (promptLength * 0.013e-3), 6);
    expect(row.prefillTimeRatio).toBeCloseTo(1.3, 10);
    // 20 steps a side (10 x 2 repeats), one stalled: sorted plain = 19 x 2 ms, 50 ms.
    // p10 at rank 1.9, median at 9.5, p90 at 17.1: all among the 2 ms steps.
    expect(row.plain.decodeStepMilliseconds).toEqual({ p10: 2, median: 2, p90: 2 });
    expect(row.selfExtend.decodeStepMilliseconds).toEqual({ p10: 3, median: 3, p90: 3 });
    expect(row.plain.decodeTokensPerSecond).toBeCloseTo(500, 10);
    expect(row.selfExtend.decodeTokensPerSecond).toBeCloseTo(1000 / 3, 10);
    expect(row.decodeTimeRatio).toBeCloseTo(1.5, 10);
  });

  it("reports steps spread over their quantiles", async () => {
    // Decode steps of step + 1 ms (plain) and 2 (step + 1) ms (Self-Extend): 1..10 and 2..20.
    const { model, now } = recordingModel((side, call, tokens, _time, step) =>
      call === "evaluate" ? tokens * 0.01 : (side === "plain" ? 1 : 2) * (step + 1),
    );
    const [row] = await runSpeedBenchmark(model, {
      selfExtend,
      multiples: [2],
      decodeTokens: 10,
      repeats: 1,
      now,
    });
    // Ranks 0.9, 4.5 and 8.1 of 1..10: 1.9, 5.5, 9.1.
    expect(row.plain.decodeStepMilliseconds.p10).toBeCloseTo(1.9, 10);
    expect(row.plain.decodeStepMilliseconds.median).toBeCloseTo(5.5, 10);
    expect(row.plain.decodeStepMilliseconds.p90).toBeCloseTo(9.1, 10);
    expect(row.selfExtend.decodeStepMilliseconds.median).toBeCloseTo(11, 10);
    expect(row.decodeTimeRatio).toBeCloseTo(2, 10);
  });

  it("measures the true ratio while the machine slows down during the run", async () => {
    // Self-Extend costs 1.25x plain, and every call costs more the later it runs: 1 + time / 40
    // (the clock in ms), so calls near the end of the run cost several times those at its start
    // (the prompt costs 0.0003 ms a token, 5.4 ms a side; a decode step 1 ms).
    // Run one after the other, plain gets the cheap early clock and Self-Extend the late one:
    // checked, that schedule gives a prefill ratio of 1.42 here, and turns that never swap
    // who goes first a decode ratio of 1.55. Taking turns, swapping each time, cancels it.
    const { model, now } = recordingModel((side, call, tokens, time) => {
      const base = call === "evaluate" ? tokens * 0.0003 : 1;
      return base * (side === "plain" ? 1 : 1.25) * (1 + time / 40);
    });
    const [row] = await runSpeedBenchmark(model, {
      selfExtend,
      multiples: [2],
      decodeTokens: 32,
      repeats: 1,
      now,
    });
    expect(row.prefillTimeRatio).toBeGreaterThan(1.25 * 0.97);
    expect(row.prefillTimeRatio).toBeLessThan(1.25 * 1.03);
    expect(row.decodeTimeRatio).toBeGreaterThan(1.25 * 0.9);
    expect(row.decodeTimeRatio).toBeLessThan(1.25 * 1.1);
  });
});
