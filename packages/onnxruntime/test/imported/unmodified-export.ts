/**
 * Runs a user's export exactly as exported, with its own input/output contract (input_ids,
 * attention_mask, position_ids when it has them, past_key_values.N.* -> logits, present.N.*), batch
 * of one: the independent baseline for the rewritten graph at G = 1 (tests) and the unmodified
 * side of bench/imported-benchmark.ts. Nothing of the package is used, only onnxruntime-node.
 */
import * as ort from "onnxruntime-node";

export interface UnmodifiedRun {
  /** Logits of the prompt's last position. */
  readonly lastLogits: Float32Array;
  /** Greedy tokens after the prompt. */
  readonly tokens: number[];
  /** Wall time of the prompt's run and of all decoding runs (for the benchmark). */
  readonly prefillMilliseconds: number;
  readonly decodeMilliseconds: number;
}

function argmax(values: Float32Array, offset: number, length: number): number {
  let best = 0;
  for (let index = 1; index < length; index++) {
    if (values[offset + index] > values[offset + best]) best = index;
  }
  return best;
}

export async function runUnmodifiedExport(
  /** The export's path, or a session already made from it (kept open by the caller). */
  model: string | ort.InferenceSession,
  shape: {
    readonly layerCount: number;
    readonly kvHeadCount: number;
    readonly headSize: number;
    readonly vocabularySize: number;
  },
  prompt: readonly number[],
  greedyTokens: number,
): Promise<UnmodifiedRun> {
  const session = typeof model === "string" ? await ort.InferenceSession.create(model) : model;
  try {
    const { layerCount, kvHeadCount, headSize, vocabularySize } = shape;
    let past: Record<string, ort.Tensor> = {};
    for (let layer = 0; layer < layerCount; layer++) {
      for (const part of ["key", "value"]) {
        past[`past_key_values.${layer}.${part}`] = new ort.Tensor("float32", new Float32Array(0), [
          1,
          kvHeadCount,
          0,
          headSize,
        ]);
      }
    }
    let cached = 0;
    const step = async (tokens: readonly number[]) => {
      const count = tokens.length;
      const feeds: Record<string, ort.Tensor> = {
        ...past,
        input_ids: new ort.Tensor("int64", BigInt64Array.from(tokens, BigInt), [1, count]),
        attention_mask: new ort.Tensor("int64", new BigInt64Array(cached + count).fill(1n), [
          1,
          cached + count,
        ]),
      };
      if (session.inputNames.includes("position_ids")) {
        feeds.position_ids = new ort.Tensor(
          "int64",
          BigInt64Array.from({ length: count }, (_, index) => BigInt(cached + index)),
          [1, count],
        );
      }
      const results = await session.run(feeds);
      const next: Record<string, ort.Tensor> = {};
      for (let layer = 0; layer < layerCount; layer++) {
        next[`past_key_values.${layer}.key`] = results[`present.${layer}.key`];
        next[`past_key_values.${layer}.value`] = results[`present.${layer}.value`];
      }
      past = next;
      cached += count;
      const logits = results.logits.data as Float32Array;
      return logits.slice((count - 1) * vocabularySize, count * vocabularySize);
    };
    let start = performance.now();
    const lastLogits = await step(prompt);
    const prefillMilliseconds = performance.now() - start;
    start = performance.now();
    const tokens: number[] = [];
    let logits = lastLogits;
    for (let index = 0; index < greedyTokens; index++) {
      const token = argmax(logits, 0, vocabularySize);
      tokens.push(token);
      if (index + 1 < greedyTokens) logits = await step([token]);
    }
    return { lastLogits, tokens, prefillMilliseconds, decodeMilliseconds: performance.now() - start };
  } finally {
    if (typeof model === "string") await session.release();
  }
}
