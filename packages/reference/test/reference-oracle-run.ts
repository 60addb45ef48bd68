/** An oracle run (tools/gemma-models, tools/phi3-models) replayed on the reference backend. */
import { expect } from "vitest";
import { createReferenceBackend } from "../src/index.js";
import { type GemmaOracleRun, largestRowDifference, replayOracleRun } from "./gemma-oracle.js";

/**
 * The run's prompt and greedy tokens on the reference backend, in a session exactly as long as the
 * oracle's sequence: the largest logit difference over the oracle's prompt rows, over its last
 * decode step, and the greedy tokens.
 */
export async function runOracleOnReference(path: string, run: GemmaOracleRun) {
  const model = await createReferenceBackend().loadModel({ path });
  const session = await model.createSession({
    selfExtend: { groupSize: run.group_size, neighborWindow: run.neighbor_window },
    contextSize: run.prompt_tokens.length + run.greedy_tokens.length,
  });
  const { rows, positions, vocabularySize, lastStep, greedy, tokenCount } = await replayOracleRun(
    session,
    run,
  );
  const largest = Math.max(
    ...positions.map((position, row) =>
      largestRowDifference(rows, row * vocabularySize, run.logits[String(position)]),
    ),
  );
  expect(tokenCount - 1).toBe(run.last_greedy_step.position);
  await session.dispose();
  await model.dispose();
  return { largest, lastStepLargest: largestRowDifference(lastStep, 0, run.last_greedy_step.logits), greedy };
}
