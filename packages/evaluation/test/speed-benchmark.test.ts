import { join } from "node:path";
import type { SelfExtendModelV1, SelfExtendSessionV1, SessionOptionsV1 } from "@self-extend/core";
import { generateTinyModel, tinyModelSpec, writeLlamaGguf } from "@self-extend/models/node";
import { createReferenceBackend } from "@self-extend/reference";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { deterministicPromptTokens, runSpeedBenchmark } from "../src/index.js";
import { decodeBlockTokens, prefillSegments, promptSegments } from "../src/speed-benchmark.js";

// The reference backend on a tiny model (L = 288, so a 2 x L context has a 560-token prompt:
// eight parts of at least 64 tokens), its sessions wrapped to record what the benchmark asks of
// them and to advance a clock of the test's own by a cost the test sets. The clock makes the
// measured times known in advance, so the benchmark's arithmetic is checked against hand-computed
// values; no test here reads real time.
const trainedContext = 288;
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

function instrument(model: SelfExtendModelV1, cost: Cost) {
  const events: Event[] = [];
  let time = 0;
  let sessions = 0;
  const decodeSteps: Record<Side, number> = { plain: 0, selfExtend: 0 };
  const wrapped = Object.assign(Object.create(model), {
    async createSession(options: SessionOptionsV1): Promise<SelfExtendSessionV1> {
      const side: Side = options.selfExtend.groupSize === 1 ? "plain" : "selfExtend";
      const session = await model.createSession(options);
      const id = sessions++;
      events.push({ side, session: id, call: "create" });
      return Object.assign(Object.create(session), {
        async evaluate(tokens: readonly number[], evaluateOptions?: { logits?: unknown }) {
          events.push({
            side,
            session: id,
            call: "evaluate",
            tokens: [...tokens],
            logits: evaluateOptions?.logits,
          });
          const result = await session.evaluate(tokens, evaluateOptions as never);
          time += cost(side, "evaluate", tokens.length, time, 0);
          return result;
        },
        async decode(token: number) {
          events.push({ side, session: id, call: "decode", tokens: [token] });
          const result = await session.decode(token);
          time += cost(side, "decode", 1, time, decodeSteps[side]++);
          return result;
        },
        async reset() {
          events.push({ side, session: id, call: "reset" });
          return session.reset();
        },
        async dispose() {
          events.push({ side, session: id, call: "dispose" });
          return session.dispose();
        },
      });
    },
  }) as SelfExtendModelV1;
  return { model: wrapped, events, now: () => time };
}

describe("runSpeedBenchmark: both sessions side by side", () => {
  const temporary = useTemporaryFolder();

  async function loadTinyModel(): Promise<SelfExtendModelV1> {
    const modelPath = join(temporary(), "model.gguf");
    writeLlamaGguf(modelPath, generateTinyModel({ ...tinyModelSpec("llama-h8-mha"), trainedContext }, 1));
    return createReferenceBackend().loadModel({ path: modelPath });
  }

  it("feeds both open sessions the whole prompt in parts and then the decode in blocks, taking turns", async () => {
    const model = await loadTinyModel();
    const { model: recorded, events, now } = instrument(model, () => 1);
    const decodeTokens = 20;
    await runSpeedBenchmark(recorded, { selfExtend, multiples: [2], decodeTokens, repeats: 1, now });
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
    await model.dispose();
  });

  it("splits prompts into parts of at least 64 tokens, at most eight, covering every token once", () => {
    expect(promptSegments(560)).toEqual([
      [0, 70],
      [70, 140],
      [140, 210],
      [210, 280],
      [280, 350],
      [350, 420],
      [420, 490],
      [490, 560],
    ]);
    expect(promptSegments(200)).toEqual([
      [0, 66],
      [66, 133],
      [133, 200],
    ]);
    expect(promptSegments(40)).toEqual([[0, 40]]);
    expect(promptSegments(32767)).toHaveLength(8);
  });

  it("keeps the fastest prefill and the median decode step, against hand-computed times", async () => {
    const model = await loadTinyModel();
    // Prefill: 0.01 ms a token plain, 0.013 with Self-Extend, the second repeat 1.5x slower.
    // Decode: 2 ms a step plain, 3 with Self-Extend, but plain's 3rd step stalls (50 ms) and
    // Self-Extend's 7th (100 ms): a mean would count them, the median does not.
    let evaluateCalls = 0;
    const { model: recorded, now } = instrument(model, (side, call, tokens, _time, step) => {
      if (call === "evaluate") {
        evaluateCalls++;
        // Each repeat: 2 warm-up calls, then 16 parts; repeat 2 starts at call 19.
        const slow = evaluateCalls > 18 ? 1.5 : 1;
        return tokens * (side === "plain" ? 0.01 : 0.013) * slow;
      }
      if (side === "plain") return step === 2 ? 50 : 2;
      return step === 6 ? 100 : 3;
    });
    const [row] = await runSpeedBenchmark(recorded, {
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
    await model.dispose();
  });

  it("reports steps spread over their quantiles", async () => {
    const model = await loadTinyModel();
    // Decode steps of step + 1 ms (plain) and 2 (step + 1) ms (Self-Extend): 1..10 and 2..20.
    const { model: recorded, now } = instrument(model, (side, call, tokens, _time, step) =>
      call === "evaluate" ? tokens * 0.01 : (side === "plain" ? 1 : 2) * (step + 1),
    );
    const [row] = await runSpeedBenchmark(recorded, {
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
    await model.dispose();
  });

  it("measures the true ratio while the machine slows down during the run", async () => {
    const model = await loadTinyModel();
    // Self-Extend costs 1.25x plain, and every call costs more the later it runs: 1 + time / 40
    // (the clock in ms), so calls near the end of the run cost several times those at its start.
    // Run one after the other, plain gets the cheap early clock and Self-Extend the late one:
    // checked, that schedule gives a prefill ratio of 1.42 here, and turns that never swap
    // who goes first a decode ratio of 1.55. Taking turns, swapping each time, cancels it.
    const { model: recorded, now } = instrument(model, (side, call, tokens, time) => {
      const base = call === "evaluate" ? tokens * 0.01 : 1;
      return base * (side === "plain" ? 1 : 1.25) * (1 + time / 40);
    });
    const [row] = await runSpeedBenchmark(recorded, {
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
    await model.dispose();
  });
});
