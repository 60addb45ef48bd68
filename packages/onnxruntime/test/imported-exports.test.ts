/**
 * Self-Extend for the user's own ONNX exports (issue 18), on files made by the real exporters
 * (test/fixtures/imported, made by tools/onnx-exports: Optimum, onnxruntime-genai's model builder,
 * the transformers.js onnx-community layout) from random tiny Llama, Qwen2 and Phi-3 models.
 *
 * Expectations come from outside the package:
 * - G = 1: the rewritten graph against the unmodified export run as exported in onnxruntime-node
 *   (its own inputs, its own KV cache; test/imported/unmodified-export.ts).
 * - Self-Extend at 4x the trained context: against the PyTorch oracle (tools/onnx-exports/oracle.py:
 *   the same transformers model with Self-Extend written from the paper and the spec, float64),
 *   logits at four positions and 128 greedy tokens.
 */
import { copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import * as ort from "onnxruntime-node";
import { describe, expect, it, vi } from "vitest";
import { ModelProtoSchema } from "../src/generated/onnx/onnx_pb.js";
import { loadImportedOnnxModel, UnsupportedOnnxGraphError } from "../src/index.js";
import { runUnmodifiedExport } from "./imported/unmodified-export.js";

const fixtures = join(import.meta.dirname, "fixtures", "imported");
const temporary = useTemporaryFolder("onnxruntime-imported-");

interface Oracle {
  readonly group_size: number;
  readonly neighbor_window: number;
  readonly trained_context: number;
  readonly prompt_tokens: number[];
  readonly logits: Record<string, number[]>;
  readonly greedy_tokens: number[];
  readonly smallest_greedy_top1_top2_gap: number;
}

const oracleOf = (family: string): Oracle =>
  JSON.parse(readFileSync(join(fixtures, "oracle", `${family}.json`), "utf8")) as Oracle;

/** Float exports of each family: same weights, so one oracle per family. */
const floatExports = [
  { path: "optimum/llama", family: "llama" },
  { path: "genai/llama", family: "llama" },
  { path: "transformersjs/llama", family: "llama" },
  // Optimum's graph after onnxruntime's transformer optimizer: RoPE in com.microsoft RotaryEmbedding.
  { path: "ort-optimizer/llama", family: "llama" },
  { path: "optimum/qwen2", family: "qwen2" },
  { path: "genai/qwen2", family: "qwen2" },
  { path: "optimum/phi3", family: "phi3" },
  { path: "genai/phi3", family: "phi3" },
];
/** Quantized weights (int4 MatMulNBits; dynamic uint8 MatMulInteger) keep their own arithmetic. */
const quantizedExports = [
  { path: "genai-int4/llama" },
  { path: "transformersjs/llama/onnx/model_quantized.onnx" },
];

function argmax(values: Float32Array): number {
  let best = 0;
  for (let index = 1; index < values.length; index++) if (values[index] > values[best]) best = index;
  return best;
}

function largestDifference(left: ArrayLike<number>, right: ArrayLike<number>): number {
  expect(left.length).toBe(right.length);
  let largest = 0;
  for (let index = 0; index < left.length; index++)
    largest = Math.max(largest, Math.abs(left[index] - right[index]));
  return largest;
}

describe("G = 1: the rewritten graph computes what the unmodified export computes", () => {
  it.each([...floatExports, ...quantizedExports])("$path", async ({ path }) => {
    const model = await loadImportedOnnxModel(join(fixtures, path), { cacheFolder: temporary() });
    try {
      // Inside the trained context, where the unmodified export is defined (genai's RoPE cache ends at L).
      const prompt = oracleOf("llama").prompt_tokens.slice(0, 96);
      const greedyCount = 24;
      const expected = await runUnmodifiedExport(model.modelPath, model.info, prompt, greedyCount);
      const session = await model.createSession({
        contextSize: prompt.length + greedyCount,
        selfExtend: { groupSize: 1, neighborWindow: model.info.trainedContext },
      });
      const first = await session.evaluate(prompt, { logits: "last" });
      // Torch exports give 0; GroupQueryAttention sums in another order (measured <= 3.1e-6).
      expect(largestDifference(first.logits, expected.lastLogits)).toBeLessThanOrEqual(1e-5);
      const tokens: number[] = [];
      let logits = first.logits;
      for (let index = 0; index < greedyCount; index++) {
        tokens.push(argmax(logits));
        if (index + 1 < greedyCount) logits = await session.decode(tokens[index]);
      }
      expect(tokens).toEqual(expected.tokens);
      await session.dispose();
    } finally {
      await model.dispose();
    }
  });
});

describe("Self-Extend at 4x the trained context matches the PyTorch oracle", () => {
  it.each(floatExports)("$path", async ({ path, family }) => {
    const oracle = oracleOf(family);
    const model = await loadImportedOnnxModel(join(fixtures, path), { cacheFolder: temporary() });
    try {
      expect(model.info.trainedContext).toBe(oracle.trained_context);
      const prompt = oracle.prompt_tokens;
      expect(prompt.length).toBe(4 * oracle.trained_context);
      const greedyCount = oracle.greedy_tokens.length;
      const session = await model.createSession({
        contextSize: prompt.length + greedyCount,
        selfExtend: { groupSize: oracle.group_size, neighborWindow: oracle.neighbor_window },
      });
      const evaluation = await session.evaluate(prompt, { logits: "all" });
      const vocabulary = model.info.vocabularySize;
      for (const [position, expected] of Object.entries(oracle.logits)) {
        const row = evaluation.logits.subarray(
          Number(position) * vocabulary,
          (Number(position) + 1) * vocabulary,
        );
        // float32 arithmetic against a float64 oracle: transformers' own float32 run of the same
        // model differs from float64 by 7.4e-6 (oracle file); 1e-4 leaves room for 4x the keys.
        expect(largestDifference(row, expected)).toBeLessThanOrEqual(1e-4);
      }
      // Greedy: the oracle's smallest top-1/top-2 gap (3.0e-3, Llama) is 400x the measured logit error (<= 7.6e-6).
      const tokens: number[] = [];
      let logits = evaluation.logits.subarray((prompt.length - 1) * vocabulary);
      for (let index = 0; index < greedyCount; index++) {
        tokens.push(argmax(logits));
        if (index + 1 < greedyCount) logits = await session.decode(tokens[index]);
      }
      expect(tokens).toEqual(oracle.greedy_tokens);
      await session.dispose();
    } finally {
      await model.dispose();
    }
  });
});

describe("sessions of one imported model share its work", () => {
  it("a second session of a setting opens no ONNX Runtime session (graph and computed RoPE reused) and computes the same", async () => {
    // optimum/llama computes its RoPE from position_ids: each new table is one ONNX Runtime run.
    const model = await loadImportedOnnxModel(join(fixtures, "optimum/llama"), { cacheFolder: temporary() });
    const create = vi.spyOn(ort.InferenceSession, "create");
    try {
      const options = { contextSize: 64, selfExtend: { groupSize: 4, neighborWindow: 16 } };
      const prompt = oracleOf("llama").prompt_tokens.slice(0, 48);
      const first = await model.createSession(options);
      // The rewritten graph, and the RoPE subgraph run for the table.
      expect(create).toHaveBeenCalledTimes(2);
      const firstLogits = (await first.evaluate(prompt, { logits: "last" })).logits;
      await first.dispose();
      const second = await model.createSession(options);
      expect(create).toHaveBeenCalledTimes(2);
      expect((await second.evaluate(prompt, { logits: "last" })).logits).toEqual(firstLogits);
      await second.dispose();
      // Another context size needs more RoPE rows: only the table is made again.
      const longer = await model.createSession({ ...options, contextSize: 96 });
      expect(create).toHaveBeenCalledTimes(3);
      expect((await longer.evaluate(prompt, { logits: "last" })).logits).toEqual(firstLogits);
      await longer.dispose();
    } finally {
      create.mockRestore();
      await model.dispose();
    }
  });
});

describe("the rewrite keeps the user's graph and replaces only attention", () => {
  it("keeps the quantized projections and drops the old attention, mask and RoPE nodes", async () => {
    const cacheFolder = temporary();
    const model = await loadImportedOnnxModel(join(fixtures, "genai-int4/llama"), { cacheFolder });
    try {
      const original = fromBinary(ModelProtoSchema, readFileSync(model.modelPath));
      const rewritten = fromBinary(
        ModelProtoSchema,
        readFileSync(
          model.rewrittenModelPath({ kind: "self-extend", selfExtend: { groupSize: 4, neighborWindow: 32 } }),
        ),
      );
      const count = (graph: typeof original, opType: string) =>
        graph.graph?.node.filter((node) => node.opType === opType).length ?? 0;
      expect(count(original, "GroupQueryAttention")).toBe(2);
      expect(count(rewritten, "GroupQueryAttention")).toBe(0);
      expect(count(rewritten, "MatMulNBits")).toBe(count(original, "MatMulNBits"));
      expect(count(rewritten, "MatMulNBits")).toBeGreaterThan(0);
      expect(rewritten.graph?.input.map((input) => input.name)).not.toContain("attention_mask");
      expect(rewritten.metadataProps.find((entry) => entry.key === "self_extend.group_size")?.value).toBe(
        "4",
      );
    } finally {
      await model.dispose();
    }
  });
});

describe("what cannot be rewritten is refused with the node and the reason", () => {
  /** A copy of a fixture folder whose model.onnx is changed by `edit`. */
  function editedCopy(
    source: string,
    edit: (model: ReturnType<typeof fromBinary<typeof ModelProtoSchema>>) => void,
  ) {
    const folder = join(temporary(), "edited");
    mkdirSync(folder, { recursive: true });
    cpSync(join(fixtures, source), folder, { recursive: true });
    const model = fromBinary(ModelProtoSchema, readFileSync(join(folder, "model.onnx")));
    edit(model);
    writeFileSync(join(folder, "model.onnx"), toBinary(ModelProtoSchema, model));
    return folder;
  }

  const refusal = async (folder: string) => {
    const error = await loadImportedOnnxModel(folder, { cacheFolder: temporary() }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(UnsupportedOnnxGraphError);
    const message = (error as Error).message;
    expect(message).not.toContain("\n");
    return message;
  };

  it("an attention op it does not know", async () => {
    const folder = editedCopy("genai/llama", (model) => {
      const node = model.graph?.node.find((item) => item.opType === "GroupQueryAttention");
      if (node === undefined) throw new Error("fixture has no GroupQueryAttention");
      node.opType = "MultiHeadAttention";
    });
    const message = await refusal(folder);
    expect(message).toMatch(
      /\/model\/layers\.0\/attn\/GroupQueryAttention.*MultiHeadAttention.*not a supported attention op/,
    );
  });

  it("attention without RoPE (ALiBi or absolute positions)", async () => {
    // The angles go through Identity instead of Cos/Sin: a graph with no rotary embedding.
    const folder = editedCopy("optimum/llama", (model) => {
      for (const node of model.graph?.node ?? [])
        if (node.opType === "Cos" || node.opType === "Sin") node.opType = "Identity";
    });
    const message = await refusal(folder);
    expect(message).toContain("layer 0: no rotary position embedding");
    expect(message).toContain("/model/layers.0/self_attn/Concat_5");
  });

  it("a sliding window shorter than the trained context", async () => {
    const folder = editedCopy("optimum/qwen2", () => undefined);
    const config = JSON.parse(readFileSync(join(folder, "config.json"), "utf8"));
    writeFileSync(
      join(folder, "config.json"),
      JSON.stringify({ ...config, sliding_window: 64, use_sliding_window: true }),
    );
    expect(await refusal(folder)).toContain("sliding_window 64 is shorter than the trained context 128");
  });

  it("an export whose external data file is missing", async () => {
    const folder = editedCopy("genai/llama", () => undefined);
    rmSync(join(folder, "model.onnx.data"));
    expect(await refusal(folder)).toContain("its external data file model.onnx.data is missing");
  });

  it("a folder without a model", async () => {
    const folder = join(temporary(), "empty");
    mkdirSync(folder);
    copyFileSync(join(fixtures, "optimum/llama/config.json"), join(folder, "config.json"));
    expect(await refusal(folder)).toContain("no model.onnx in the folder or in its onnx/ folder");
  });
});
