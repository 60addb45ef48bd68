/**
 * The inference worker: every WebGPU call happens here, so the page stays responsive while the
 * model prefills and decodes. One run evaluates the prompt once per method (Self-Extend with the
 * planner's G and W, then plain attention), streams greedy tokens back one at a time, and, when
 * asked, the per-position negative log-likelihood of the prompt from the same prefill's logits.
 */
import {
  argmax,
  largestUsableContext,
  plainAttentionConfig,
  planSelfExtend,
  requireTokenizer,
  type SelfExtendConfig,
} from "@self-extend/core";
// The entry without the package's file-writing helpers (node:fs), which a worker cannot load.
import { buildPasskeyPrompt } from "@self-extend/evaluation/passkey-prompt";
import { createWebGpuBackend, type WebGpuModel } from "@self-extend/webgpu";
import type { Method, ModelChoice, PageMessage, PlanSummary, RunRequest, WorkerMessage } from "./messages.js";

const backend = createWebGpuBackend();
const post = (message: WorkerMessage, transfer: Transferable[] = []) => postMessage(message, { transfer });

/** Every prompt row's logits come back from one evaluation; 64M floats (256 MB) is a page's limit. */
const largestLossCurveLogits = 64 * 2 ** 20;

// The last URL model stays loaded: runs on the same model skip the download and upload.
let loaded: { key: string; model: WebGpuModel } | undefined;

async function loadModel(choice: ModelChoice): Promise<WebGpuModel> {
  const key = choice.kind === "url" ? `url:${choice.url}` : undefined;
  if (key !== undefined && loaded?.key === key) return loaded.model;
  await loaded?.model.dispose();
  loaded = undefined;
  const model =
    choice.kind === "url"
      ? await backend.loadModel({ url: choice.url })
      : await backend.loadModel({ bytes: new Uint8Array(choice.bytes) });
  if (key !== undefined) loaded = { key, model };
  return model;
}

/** -log p(token t + 1 | tokens 0..t) for every prompt position but the last. */
function positionLosses(
  logits: Float32Array,
  vocabularySize: number,
  tokens: readonly number[],
): Float32Array {
  const losses = new Float32Array(tokens.length - 1);
  for (let position = 0; position < losses.length; position++) {
    const row = logits.subarray(position * vocabularySize, (position + 1) * vocabularySize);
    let largest = Number.NEGATIVE_INFINITY;
    for (const value of row) largest = Math.max(largest, value);
    let sum = 0;
    for (const value of row) sum += Math.exp(value - largest);
    losses[position] = largest + Math.log(sum) - row[tokens[position + 1]];
  }
  return losses;
}

async function runMethod(
  model: WebGpuModel,
  method: Method,
  selfExtend: SelfExtendConfig,
  prompt: readonly number[],
  request: RunRequest,
): Promise<void> {
  const tokenizer = requireTokenizer(model);
  const contextSize = prompt.length + request.maxTokens;
  const session = await model.createSession({ selfExtend, contextSize });
  try {
    let started = performance.now();
    const evaluation = await session.evaluate(prompt, { logits: request.lossCurve ? "all" : "last" });
    const prefillTokensPerSecond = prompt.length / ((performance.now() - started) / 1000);
    const { vocabularySize } = evaluation;
    if (request.lossCurve) {
      const losses = positionLosses(evaluation.logits, vocabularySize, prompt);
      post({ type: "loss", method, losses }, [losses.buffer]);
    }
    let logits = evaluation.logits.subarray(evaluation.logits.length - vocabularySize);
    const answer: number[] = [];
    started = performance.now();
    for (let step = 0; step < request.maxTokens; step++) {
      answer.push(argmax(logits));
      post({
        type: "tokens",
        method,
        text: tokenizer.decode(answer),
        generated: answer.length,
        prefillTokensPerSecond,
        decodeTokensPerSecond: answer.length / ((performance.now() - started) / 1000),
      });
      if (step < request.maxTokens - 1) logits = await session.decode(answer[step]);
    }
  } finally {
    await session.dispose();
  }
}

async function run(request: RunRequest): Promise<void> {
  const model = await loadModel(request.model);
  const tokenizer = requireTokenizer(model);
  const prompt =
    request.prompt.kind === "passkey"
      ? buildPasskeyPrompt(tokenizer, request.prompt).tokens
      : tokenizer.encode(request.prompt.text);
  if (prompt.length < 2)
    throw new RangeError(`the prompt has ${prompt.length} token(s); it needs at least 2`);
  const { trainedContext, vocabularySize } = model.info;
  if (request.lossCurve && prompt.length * vocabularySize > largestLossCurveLogits) {
    throw new RangeError(
      `loss by position: ${prompt.length} prompt tokens x ${vocabularySize} vocabulary entries is more than ${largestLossCurveLogits} logits to hold at once; untick it or shorten the text`,
    );
  }
  const contextSize = prompt.length + request.maxTokens;
  const planned = planSelfExtend({ trainedContext, targetContext: contextSize });
  const plan: PlanSummary = {
    trainedContext,
    promptTokens: prompt.length,
    contextSize,
    selfExtend: planned.config,
    largestUsableContext: largestUsableContext(trainedContext, planned.config),
    reason: planned.reason,
  };
  post({ type: "plan", plan });
  await runMethod(model, "self-extend", planned.config, prompt, request);
  await runMethod(model, "plain", plainAttentionConfig, prompt, request);
}

addEventListener("message", async (event: MessageEvent<PageMessage>) => {
  const message = event.data;
  try {
    if (message.type === "check") {
      const availability = await backend.checkAvailability();
      if (!availability.available)
        post({ type: "unavailable", reason: availability.reason ?? "no reason given" });
      else post({ type: "available", adapter: (await backend.getContext()).adapterDescription });
      return;
    }
    await run(message);
    post({ type: "finished" });
  } catch (error) {
    post({ type: "failed", message: error instanceof Error ? error.message : String(error) });
  }
});
