import {
  adapterTolerance,
  largestDifference,
  logSoftmaxRows,
  readDeclaration,
} from "@self-extend/conformance";
import { argmax, type SelfExtendConfig, type SelfExtendSessionV1 } from "@self-extend/core";
import { createReferenceBackend } from "@self-extend/reference";
import { expect } from "vitest";
import {
  conformanceDeclaration,
  type GroupKeySource,
  type WebGpuBackend,
  type WebGpuModelOptions,
} from "../src/index.js";

/** The adapter's default tolerance (conformance/tolerances.json), for logits compared as log-probabilities. */
export function webGpuTolerance(): number {
  return adapterTolerance(readDeclaration(conformanceDeclaration).tolerances!, { backend: "webgpu" }).atol;
}

/** The largest log-probability differences of {@link compareWithReference}. */
export interface ReferenceComparison {
  /** Over every prompt position. */
  readonly prompt: number;
  /** Over every row of the greedy decoding. */
  readonly decode: number;
  /** The reference's logits of the prompt, [prompt length, vocabulary]. */
  readonly referencePromptLogits: Float32Array;
}

/**
 * A WebGPU session against the reference backend's session of the same model and settings: the
 * prompt evaluated with every position's logits, then `greedyTokens` tokens decoded one at a time,
 * each the reference's argmax and asserted identical on WebGPU. Logits are compared as
 * log-probabilities, as the conformance suite compares them; the caller asserts them against the
 * adapter's tolerance.
 */
export async function compareWithReference(
  gpu: SelfExtendSessionV1,
  reference: SelfExtendSessionV1,
  prompt: readonly number[],
  greedyTokens: number,
  vocabularySize: number,
): Promise<ReferenceComparison> {
  const difference = (a: Float32Array, b: Float32Array) =>
    largestDifference(logSoftmaxRows(a, vocabularySize), logSoftmaxRows(b, vocabularySize));
  const gpuPrompt = await gpu.evaluate(prompt, { logits: "all" });
  const referencePrompt = await reference.evaluate(prompt, { logits: "all" });
  expect(gpuPrompt.logits.length).toBe(prompt.length * vocabularySize);
  const promptDifference = difference(gpuPrompt.logits, referencePrompt.logits);
  let gpuRow = gpuPrompt.logits.subarray((prompt.length - 1) * vocabularySize);
  let referenceRow = referencePrompt.logits.subarray((prompt.length - 1) * vocabularySize);
  let decodeDifference = 0;
  for (let step = 0; step < greedyTokens; step++) {
    const token = argmax(referenceRow);
    expect(argmax(gpuRow), `greedy token ${step} after the prompt`).toBe(token);
    if (step === greedyTokens - 1) break;
    gpuRow = await gpu.decode(token);
    referenceRow = await reference.decode(token);
    decodeDifference = Math.max(decodeDifference, difference(gpuRow, referenceRow));
  }
  return {
    prompt: promptDifference,
    decode: decodeDifference,
    referencePromptLogits: referencePrompt.logits,
  };
}

/**
 * {@link compareWithReference} on a model file: the file opened on WebGPU (with `modelOptions`) and
 * on the reference backend, one session each with the same Self-Extend setting, all released after.
 */
export async function compareFileWithReference(
  backend: WebGpuBackend,
  path: string,
  options: {
    readonly modelOptions?: WebGpuModelOptions;
    readonly selfExtend: SelfExtendConfig;
    readonly prompt: readonly number[];
    readonly greedyTokens: number;
    readonly blockSize?: number;
  },
): Promise<ReferenceComparison & { readonly groupKeys: GroupKeySource }> {
  const { selfExtend, prompt, greedyTokens, blockSize } = options;
  const contextSize = prompt.length + greedyTokens;
  const gpuModel = await backend.loadModel({ path }, options.modelOptions);
  const referenceModel = await createReferenceBackend().loadModel({ path });
  const gpu = await gpuModel.createSession({ selfExtend, contextSize, blockSize });
  const reference = await referenceModel.createSession({ selfExtend, contextSize });
  try {
    const compared = await compareWithReference(
      gpu,
      reference,
      prompt,
      greedyTokens,
      gpuModel.info.vocabularySize,
    );
    return { ...compared, groupKeys: gpuModel.groupKeys };
  } finally {
    await gpu.dispose();
    await reference.dispose();
    await gpuModel.dispose();
    await referenceModel.dispose();
  }
}
