/**
 * Runs in the page: the whole forward pass through the package's public API, as a web app would
 * use it. The model is fetched from the test server as a GGUF (`loadModel({ url })`), the device
 * comes from navigator.gpu, the prompt is prefilled with Self-Extend and tokens are generated
 * greedily from the page's own logits. Everything goes back to Node as plain arrays.
 */
import { argmax, type SelfExtendConfig } from "@self-extend/core";
import { createWebGpuBackend } from "../../src/index.js";

export interface ForwardPassRequest {
  readonly modelUrl: string;
  readonly prompt: readonly number[];
  readonly selfExtend: SelfExtendConfig;
  readonly generatedTokens: number;
  /** Prompt positions whose logits come back (besides the last one, which starts generation). */
  readonly promptRows: readonly number[];
}

export interface ForwardPassResult {
  readonly adapter: string;
  readonly float16: boolean;
  readonly trainedContext: number;
  readonly vocabularySize: number;
  /** Greedy tokens after the prompt. */
  readonly tokens: number[];
  /** Logits of `promptRows`, in that order. */
  readonly promptLogits: number[][];
  /** Logits that chose each generated token: the prompt's last row, then every decode but the last. */
  readonly generationLogits: number[][];
  readonly timings: { loadMs: number; prefillMs: number; decodeMs: number };
}

export async function runForwardPass(request: ForwardPassRequest): Promise<ForwardPassResult> {
  const { modelUrl, prompt, selfExtend, generatedTokens, promptRows } = request;
  const backend = createWebGpuBackend();
  const context = await backend.getContext();
  let started = performance.now();
  const model = await backend.loadModel({ url: modelUrl });
  const loadMs = performance.now() - started;
  const session = await model.createSession({ selfExtend, contextSize: prompt.length + generatedTokens });
  try {
    const rows = [...promptRows, prompt.length - 1];
    started = performance.now();
    const evaluation = await session.evaluate(prompt, { logits: rows });
    const prefillMs = performance.now() - started;
    const { vocabularySize } = evaluation;
    const rowOf = (index: number) =>
      Array.from(evaluation.logits.subarray(index * vocabularySize, (index + 1) * vocabularySize));
    const promptLogits = promptRows.map((_, index) => rowOf(index));
    let logits = evaluation.logits.subarray((rows.length - 1) * vocabularySize);
    const tokens: number[] = [];
    const generationLogits: number[][] = [];
    started = performance.now();
    for (let step = 0; step < generatedTokens; step++) {
      const token = argmax(logits);
      tokens.push(token);
      generationLogits.push(Array.from(logits));
      if (step === generatedTokens - 1) break;
      logits = await session.decode(token);
    }
    const decodeMs = performance.now() - started;
    context.assertHealthy();
    return {
      adapter: context.adapterDescription,
      float16: context.float16,
      trainedContext: model.info.trainedContext,
      vocabularySize,
      tokens,
      promptLogits,
      generationLogits,
      timings: { loadMs, prefillMs, decodeMs },
    };
  } finally {
    await session.dispose();
    await model.dispose();
    context.destroy();
  }
}
