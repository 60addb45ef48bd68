/**
 * The native bridge's K-shift of only the moved cells (`applyPendingKeyShifts`) against llama.cpp's
 * own whole-cache K-shift (`SELF_EXTEND_LLAMA_CPP_WHOLE_CACHE_SHIFT=1`): the same file, settings
 * and tokens must give bit-identical logits, greedy tokens and cell positions, on each RoPE layout
 * the bridge rotates (llama's interleaved pairs, Qwen2's split halves, Llama 3's frequency factors),
 * in exact and fast-prefill modes, with a float16 cache, and on Gemma 2 and 3's sliding-window
 * cache pairs.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { type AttentionMode, argmax, type SelfExtendConfig } from "@self-extend/core";
import { generateTinyModel, tinyModelSpec, writeLlamaGguf } from "@self-extend/models/node";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { afterEach, describe, expect, it } from "vitest";
import {
  createSelfExtendContext,
  describeModelFile,
  getCpuLlama,
  type LlamaCppCachePrecision,
  type SelfExtendContext,
} from "../src/index.js";
import { findOrBuildNativeBridge, prepareNativeBridge } from "../src/native-bridge.js";
import { NativeSequence } from "../src/node-llama-cpp-internals.js";
import { concatenateRows, seededTokens } from "./helpers.js";

const temporaryFolder = useTemporaryFolder("llama-cpp-moved-cells-");
const wholeCacheVariable = "SELF_EXTEND_LLAMA_CPP_WHOLE_CACHE_SHIFT";

afterEach(() => {
  delete process.env[wholeCacheVariable];
});

function sequenceOf(context: SelfExtendContext): NativeSequence {
  return (context as unknown as { sequence: NativeSequence }).sequence;
}

interface Run {
  rows: Float32Array;
  generated: number[];
  positions: Int32Array;
  keyShift: string;
  keyShiftReason: string | undefined;
  rotatedCells: number;
}

async function run(
  path: string,
  prompt: readonly number[],
  config: SelfExtendConfig,
  options: { wholeCache: boolean; mode?: AttentionMode; cachePrecision?: LlamaCppCachePrecision },
): Promise<Run> {
  if (options.wholeCache) process.env[wholeCacheVariable] = "1";
  else delete process.env[wholeCacheVariable];
  const decoded = 24;
  const context = await createSelfExtendContext({
    model: path,
    ...config,
    contextSize: prompt.length + decoded,
    mode: options.mode,
    cachePrecision: options.cachePrecision,
    threads: 1,
  });
  try {
    const rows = [(await context.evaluate(prompt, { logits: "all" })).logits as Float32Array];
    const generated: number[] = [];
    let token = argmax(rows[0], rows[0].length - context.vocabularySize, context.vocabularySize);
    for (let step = 0; step < decoded; step++) {
      generated.push(token);
      const row = (await context.decode(token)) as Float32Array;
      rows.push(row);
      token = argmax(row);
    }
    const sequence = sequenceOf(context);
    return {
      rows: concatenateRows(rows),
      generated,
      positions: sequence.cellPositions(),
      keyShift: sequence.keyShift,
      keyShiftReason: sequence.keyShiftReason,
      rotatedCells: sequence.rotatedCells,
    };
  } finally {
    await context.dispose();
  }
}

function modelFile(name: string, multiple = 3): { path: string; prompt: number[] } {
  const weights = generateTinyModel(tinyModelSpec(name), 11);
  const path = join(temporaryFolder(), `${name}.gguf`);
  writeLlamaGguf(path, weights);
  const { vocabularySize, trainedContext } = weights.description;
  return { path, prompt: seededTokens(multiple * trainedContext, vocabularySize, 13) };
}

/** Bit-identical rows (compared as integers, so -0 and NaN patterns count too). */
function expectSameBits(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  const actualBits = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const expectedBits = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  let firstDifference = -1;
  for (let index = 0; index < actualBits.length && firstDifference < 0; index++) {
    if (actualBits[index] !== expectedBits[index]) firstDifference = index;
  }
  expect(firstDifference, `first differing entry ${firstDifference}`).toBe(-1);
}

describe.sequential("K-shift of the moved cells only, against llama.cpp's whole-cache K-shift", () => {
  const cases: {
    name: string;
    config: SelfExtendConfig;
    mode?: AttentionMode;
    cachePrecision?: LlamaCppCachePrecision;
  }[] = [
    { name: "llama-h16-gqa2", config: { groupSize: 4, neighborWindow: 32 } },
    { name: "qwen2-h16-mha-bias", config: { groupSize: 4, neighborWindow: 32 } },
    { name: "llama3-h64-gqa4-rope-freqs", config: { groupSize: 8, neighborWindow: 48 } },
    { name: "llama-h16-gqa2", config: { groupSize: 4, neighborWindow: 32 }, mode: "fast-prefill" },
    { name: "llama-h16-gqa2", config: { groupSize: 4, neighborWindow: 32 }, cachePrecision: "float16" },
  ];
  for (const { name, config, mode, cachePrecision } of cases) {
    const label = `${name}, G ${config.groupSize} W ${config.neighborWindow}, ${mode ?? "exact"}, ${cachePrecision ?? "float32"} cache`;
    it(`${label}: bit-identical logits, tokens and positions`, async () => {
      const { path, prompt } = modelFile(name);
      const moved = await run(path, prompt, config, { wholeCache: false, mode, cachePrecision });
      const whole = await run(path, prompt, config, { wholeCache: true, mode, cachePrecision });
      expect(moved.keyShift, moved.keyShiftReason).toBe("moved-cells");
      expect(whole.keyShift).toBe("whole-cache");
      expect(whole.rotatedCells).toBe(0);
      // Exact mode moves the W neighbour keys before almost every query past W: the bridge rotated
      // about W cells per token, far fewer than the cache holds.
      const tokens = prompt.length + 24;
      expect(moved.rotatedCells).toBeGreaterThan(0);
      if ((mode ?? "exact") === "exact") {
        expect(moved.rotatedCells).toBeLessThanOrEqual(tokens * config.neighborWindow);
        expect(moved.rotatedCells).toBeGreaterThan(
          ((tokens - config.neighborWindow) * config.neighborWindow) / 2,
        );
      }
      expect(Array.from(moved.positions)).toEqual(Array.from(whole.positions));
      expect(moved.generated).toEqual(whole.generated);
      expectSameBits(moved.rows, whole.rows);
    });
  }

  // Gemma 2 and 3 keep a full cache and a sliding-window cache (llama_kv_cache_iswa): both are
  // rotated; Gemma 3's local and global layers rotate with their own RoPE bases.
  for (const { name, window } of [
    { name: "gemma2-h16-gqa2-window40", window: 40 },
    { name: "gemma3-h16-gqa2-window8", window: 8 },
  ]) {
    it(`${name}: the sliding-window cache pair, bit-identical`, async () => {
      // W >= the sliding window; (L - W) * G + W = 176 tokens hold twice L = 64 and 24 more.
      const { path, prompt } = modelFile(name, 2);
      const config = { groupSize: 8, neighborWindow: 48 };
      expect(config.neighborWindow).toBeGreaterThanOrEqual(window);
      const moved = await run(path, prompt, config, { wholeCache: false });
      const whole = await run(path, prompt, config, { wholeCache: true });
      expect(moved.keyShift, moved.keyShiftReason).toBe("moved-cells");
      expect(moved.rotatedCells).toBeGreaterThan(0);
      expect(Array.from(moved.positions)).toEqual(Array.from(whole.positions));
      expect(moved.generated).toEqual(whole.generated);
      expectSameBits(moved.rows, whole.rows);
    });
  }

  it("RoPE that scales what it rotates (Phi-3's attention factor) is left to llama.cpp, with the reason", async () => {
    // llama.cpp's K-shift multiplies every cell by the factor, moved or not, so only its own
    // whole-cache pass gives its keys. The adapter refuses Self-Extend on such files; the native
    // sequence is driven directly here, moving keys as Self-Extend would.
    const path = join(
      import.meta.dirname,
      "..",
      "..",
      "reference",
      "test",
      "fixtures",
      "phi3",
      "phi3-longrope.gguf",
    );
    const model = await (await getCpuLlama()).loadModel({ modelPath: path });
    const context = await model.createContext({
      contextSize: 256,
      sequences: 1,
      threads: 1,
      flashAttention: false,
    });
    const sequence = new NativeSequence(context, context.getSequence(), model, await prepareNativeBridge());
    try {
      const { vocabularySize } = describeModelFile(path);
      await sequence.decode(seededTokens(64, vocabularySize, 5), 0, [], vocabularySize);
      sequence.shift(32, 64, -8);
      await sequence.decode([1], 56, [0], vocabularySize);
      expect(sequence.keyShift).toBe("whole-cache");
      expect(sequence.keyShiftReason).toBe("RoPE scales the keys it rotates (YaRN or an attention factor)");
      expect(sequence.rotatedCells).toBe(0);
    } finally {
      sequence.dispose();
      await context.dispose();
      await model.dispose();
    }
  });

  it("the bridge links nothing of llama.cpp or ggml: it calls their functions in the loaded libllama", async () => {
    // A linked libllama would be a second copy beside node-llama-cpp's (or fail to load): every
    // llama/ggml function, C++ members included, must come from dlsym.
    const { file } = await findOrBuildNativeBridge();
    if (file === undefined) throw new Error("the native bridge is not built");
    const undefinedSymbols = execFileSync("nm", ["--undefined-only", "--demangle", file], {
      encoding: "utf8",
    })
      .split("\n")
      .map((line) => line.trim().replace(/^[a-zA-Z] /, ""))
      .filter((symbol) => symbol !== "");
    expect(undefinedSymbols.some((symbol) => symbol.startsWith("dlsym@"))).toBe(true);
    expect(undefinedSymbols.filter((symbol) => /llama|ggml/i.test(symbol))).toEqual([]);
  });

  it("llama.cpp-compatible mode keeps llama.cpp's own K-shift, as llama-completion", async () => {
    const { path, prompt } = modelFile("llama-h16-gqa2");
    const context = await createSelfExtendContext({
      model: path,
      groupSize: 4,
      neighborWindow: 32,
      contextSize: prompt.length,
      mode: "llama.cpp-compatible",
      threads: 1,
    });
    try {
      await context.evaluate(prompt, { logits: "last" });
      expect(sequenceOf(context).keyShift).toBe("whole-cache");
      expect(sequenceOf(context).rotatedCells).toBe(0);
    } finally {
      await context.dispose();
    }
  });
});
