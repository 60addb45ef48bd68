/**
 * Drift of every mode and cache precision against the float64 reference on stories260K:
 * a 1536-token TinyStories prompt (3x L) then 256 greedy tokens (each side decodes its own
 * greedy choice; the rows are compared while the token streams agree).
 *
 *     pnpm drift
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { logSoftmaxRows } from "@self-extend/conformance";
import { type AttentionMode, argmax } from "@self-extend/core";
import { importLlama2c } from "@self-extend/models/node";
import { createReferenceBackend } from "@self-extend/reference";
import { sharedModelPaths } from "@self-extend/test-fixtures";
import { createSelfExtendContext, type LlamaCppCachePrecision } from "../src/index.js";

const selfExtend = { groupSize: 8, neighborWindow: 256 };
const generated = 256;
const floor = -60;

/** One row's log-softmax, as the conformance suite computes it. */
function logSoftmax(row: ArrayLike<number>): Float64Array {
  return logSoftmaxRows(row, row.length);
}

const folder = mkdtempSync(join(tmpdir(), "self-extend-drift-"));
try {
  const path = join(folder, "stories260K.gguf");
  importLlama2c({
    checkpointPath: sharedModelPaths.stories260K,
    tokenizerPath: sharedModelPaths.tokenizer,
    outPath: path,
  });
  const text = readFileSync(sharedModelPaths.validationText, "utf8").slice(0, 20000);

  // The reference once: prompt rows and its greedy continuation.
  const probe = await createSelfExtendContext({ model: path, ...selfExtend, contextSize: 2048, threads: 1 });
  const prompt = [probe.model.tokens.bos as number, ...probe.tokenize(text)].slice(0, 1536);
  await probe.dispose();
  const reference = await (await createReferenceBackend().loadModel({ path })).createSession({
    selfExtend,
    contextSize: 2048,
  });
  const referenceEvaluation = await reference.evaluate(prompt, { logits: "all" });
  const V = referenceEvaluation.vocabularySize;
  const referenceRows: Float64Array[] = [];
  for (let row = 0; row < prompt.length; row++) {
    referenceRows.push(logSoftmax(referenceEvaluation.logits.subarray(row * V, (row + 1) * V)));
  }
  const referenceTokens: number[] = [];
  let last = referenceRows.at(-1) as Float64Array;
  for (let step = 0; step < generated; step++) {
    const token = argmax(last);
    referenceTokens.push(token);
    if (step < generated - 1) {
      last = logSoftmax(await reference.decode(token));
      referenceRows.push(last);
    }
  }

  console.log(
    `stories260K, G = ${selfExtend.groupSize}, W = ${selfExtend.neighborWindow}, prompt ${prompt.length} + ${generated} greedy tokens; max |log p - log p_ref| (entries with log p_ref > ${floor}) and argmax agreement`,
  );
  console.log(
    "| mode | KV cache | prompt max diff | decode max diff | argmax agreement | greedy tokens identical |",
  );
  console.log("|---|---|---|---|---|---|");
  const cases: [AttentionMode, LlamaCppCachePrecision, number?][] = [
    ["exact", "float32"],
    ["exact", "float16"],
    ["fast-prefill", "float32", selfExtend.groupSize],
    ["fast-prefill", "float32", selfExtend.neighborWindow / 4],
    ["llama.cpp-compatible", "float32"],
    ["llama.cpp-compatible", "float16"],
  ];
  for (const [mode, cachePrecision, prefillChunkSize] of cases) {
    const context = await createSelfExtendContext({
      model: path,
      ...selfExtend,
      contextSize: 2048,
      threads: 1,
      mode,
      cachePrecision,
      prefillChunkSize,
      llamaCppBatchSize: 512,
    });
    const evaluation = await context.evaluate(prompt, { logits: "all" });
    // Rows are raw logits (native bridge) or log-softmax (without it); compare log-softmax either way.
    const rows: Float64Array[] = [];
    for (let row = 0; row < prompt.length; row++) {
      rows.push(logSoftmax(evaluation.logits.subarray(row * V, (row + 1) * V)));
    }
    const tokens: number[] = [];
    let row: ArrayLike<number> = rows.at(-1) as Float64Array;
    for (let step = 0; step < generated; step++) {
      // Follow the reference's tokens so rows stay comparable; count where our argmax differs.
      tokens.push(argmax(row));
      if (step < generated - 1) {
        row = await context.decode(referenceTokens[step]);
        rows.push(logSoftmax(row));
      }
    }
    let promptDifference = 0;
    let decodeDifference = 0;
    let agreeing = 0;
    for (let index = 0; index < rows.length; index++) {
      for (let token = 0; token < V; token++) {
        if (referenceRows[index][token] < floor) continue;
        const difference = Math.abs(rows[index][token] - referenceRows[index][token]);
        if (index < prompt.length) promptDifference = Math.max(promptDifference, difference);
        else decodeDifference = Math.max(decodeDifference, difference);
      }
      if (argmax(rows[index]) === argmax(referenceRows[index])) agreeing++;
    }
    console.log(
      `| ${mode}${prefillChunkSize === undefined ? "" : ` (chunk ${prefillChunkSize})`} | ${cachePrecision === "float32" ? "F32/F32" : "F16/F16"} | ${promptDifference.toExponential(2)} | ${decodeDifference.toExponential(2)} | ${((100 * agreeing) / rows.length).toFixed(2)}% | ${tokens.join() === referenceTokens.join()} |`,
    );
    await context.dispose();
  }
} finally {
  rmSync(folder, { recursive: true, force: true });
}
