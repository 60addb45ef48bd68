/**
 * Passkey retrieval over lengths x depths: for each run (length, attention) and depth, `trials`
 * prompts with seeded keys are read and greedily continued; a trial succeeds when the continuation
 * contains the key. One cell per (run, depth), handed out as soon as it finishes.
 */
import { generateTokens, largestUsableContext, type SelfExtendModelV1 } from "@self-extend/core";
import { type EvaluationRun, runLabel } from "./evaluation-runs.js";
import { buildPasskeyPrompt, type PasskeyTokenizer, passkeyKeys } from "./passkey-prompt.js";

export interface PasskeyTrial {
  readonly key: string;
  readonly found: boolean;
  /** The decoded greedy continuation. */
  readonly answer: string;
  /** Token index of the key line's start in the prompt. */
  readonly keyStart: number;
}

export interface PasskeyCell extends EvaluationRun {
  readonly label: string;
  /** The depth asked for, and where the key line landed (nearest filler-sentence boundary). */
  readonly depth: number;
  readonly actualDepth: number;
  readonly trials: readonly PasskeyTrial[];
  readonly successes: number;
  /** successes / trials, 0..1. */
  readonly accuracy: number;
  readonly seconds: number;
}

export interface PasskeyEvaluationProgress {
  readonly promptsDone: number;
  readonly promptsTotal: number;
  /** Prompt tokens read so far and in all: a fairer base for a time estimate than prompts. */
  readonly tokensDone: number;
  readonly tokensTotal: number;
  readonly run: EvaluationRun;
}

export interface PasskeyEvaluationOptions {
  /** Runs planned with `extraTokens: answerTokens` so the answer fits the plan. */
  readonly runs: readonly EvaluationRun[];
  readonly depths: readonly number[];
  readonly trials: number;
  /** Seed of the keys; every cell uses the same keys, so cells compare like with like. */
  readonly seed?: number;
  /** Tokens generated after the question (default 8). */
  readonly answerTokens?: number;
  readonly filler?: string;
  readonly question?: string;
  readonly introduction?: string;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: PasskeyEvaluationProgress) => void;
  readonly onCell?: (cell: PasskeyCell, cells: readonly PasskeyCell[]) => void;
}

export const defaultAnswerTokens = 8;

export async function evaluatePasskey(
  model: SelfExtendModelV1,
  tokenizer: PasskeyTokenizer,
  options: PasskeyEvaluationOptions,
): Promise<PasskeyCell[]> {
  const { runs, depths, trials, signal, onProgress, onCell } = options;
  const answerTokens = options.answerTokens ?? defaultAnswerTokens;
  if (!Number.isSafeInteger(trials) || trials < 1)
    throw new RangeError(`trials ${trials} must be an integer >= 1`);
  if (depths.length === 0) throw new RangeError("no depths to evaluate");
  const keys = passkeyKeys(trials, options.seed ?? 0);
  const promptOf = (length: number, depth: number, key: string) =>
    buildPasskeyPrompt(tokenizer, {
      length,
      depth,
      key,
      filler: options.filler,
      question: options.question,
      introduction: options.introduction,
    });
  // Every prompt is built before any model work, so a bad length or filler fails at once.
  for (const run of runs) for (const depth of depths) promptOf(run.length, depth, keys[0]);

  const trainedContext = model.info.trainedContext;
  const promptsTotal = runs.length * depths.length * trials;
  const tokensTotal = runs.reduce((sum, run) => sum + run.length, 0) * depths.length * trials;
  let promptsDone = 0;
  let tokensDone = 0;
  const cells: PasskeyCell[] = [];
  for (const run of runs) {
    const contextSize = run.length + answerTokens;
    const beyondLimit =
      run.method === "self-extend" && contextSize > largestUsableContext(trainedContext, run.selfExtend);
    const session = await model.createSession({
      selfExtend: run.selfExtend,
      contextSize,
      // Reference-only: lets a config run past (L - W) * G + W, to measure what that costs.
      ...(beyondLimit ? { allowBeyondUsableContext: true } : {}),
    });
    try {
      for (const depth of depths) {
        const started = performance.now();
        const results: PasskeyTrial[] = [];
        let actualDepth = 0;
        for (const key of keys) {
          signal?.throwIfAborted();
          const prompt = promptOf(run.length, depth, key);
          actualDepth = prompt.actualDepth;
          await session.reset();
          const answer: number[] = [];
          for await (const token of generateTokens(session, prompt.tokens, {
            maxTokens: answerTokens,
            signal,
          })) {
            answer.push(token);
          }
          const text = tokenizer.decode(answer);
          results.push({ key, found: text.includes(key), answer: text, keyStart: prompt.keyStart });
          promptsDone += 1;
          tokensDone += run.length;
          onProgress?.({ promptsDone, promptsTotal, tokensDone, tokensTotal, run });
        }
        const successes = results.filter((trial) => trial.found).length;
        const cell: PasskeyCell = {
          ...run,
          label: runLabel(run),
          depth,
          actualDepth,
          trials: results,
          successes,
          accuracy: successes / results.length,
          seconds: (performance.now() - started) / 1000,
        };
        cells.push(cell);
        onCell?.(cell, cells);
      }
    } finally {
      await session.dispose();
    }
  }
  return cells;
}
