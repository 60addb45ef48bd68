/**
 * Perplexity against context length, on the same tokens for every length, built on the reference
 * package's computePerplexity (non-overlapping windows, every window position scored against the
 * next token of the stream). Each run becomes one cell with its overall perplexity, perplexity by
 * position bucket (so the range past the trained context is visible) and a loss curve against
 * position for plots. Cells are handed out as soon as each finishes, so callers can write them
 * incrementally.
 */
import { largestUsableContext, type SelfExtendModelV1 } from "@self-extend/core";
import { computePerplexity, type PositionRange } from "@self-extend/reference";
import { type EvaluationRun, runLabel } from "./evaluation-runs.js";

export interface PerplexityBucket {
  readonly start: number;
  /** Exclusive. */
  readonly end: number;
  readonly perplexity: number;
  readonly predictionCount: number;
}

export interface PerplexityCell extends EvaluationRun {
  readonly label: string;
  readonly perplexity: number;
  /** Mean negative log-likelihood per prediction, nats. */
  readonly meanNegativeLogLikelihood: number;
  readonly predictionCount: number;
  readonly windowCount: number;
  readonly buckets: readonly PerplexityBucket[];
  /** Mean loss (nats) over consecutive position ranges of `curveBucketWidth` positions. */
  readonly curve: {
    readonly bucketWidth: number;
    readonly meanNegativeLogLikelihood: readonly number[];
  };
  readonly seconds: number;
}

export interface PerplexityEvaluationProgress {
  /** Tokens scored so far over all runs, and in total. */
  readonly tokensDone: number;
  readonly tokensTotal: number;
  readonly run: EvaluationRun;
}

export interface PerplexityEvaluationOptions {
  readonly runs: readonly EvaluationRun[];
  /** Predictions per run; a multiple of every run's length. Default: as many as the tokens allow. */
  readonly scoredTokens?: number;
  /** Position buckets reported per run; default {@link trainedContextBuckets}. */
  readonly buckets?: (length: number) => readonly PositionRange[];
  /** Positions per point of the loss curve; default max length / 64, at least 1. */
  readonly curveBucketWidth?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: PerplexityEvaluationProgress) => void;
  /** Called after each run with its cell and every cell so far (in run order). */
  readonly onCell?: (cell: PerplexityCell, cells: readonly PerplexityCell[]) => void;
}

function greatestCommonDivisor(a: number, b: number): number {
  return b === 0 ? a : greatestCommonDivisor(b, a % b);
}

/** The least common multiple of the lengths: the scored token count must be a multiple of it. */
export function commonWindowMultiple(lengths: readonly number[]): number {
  return lengths.reduce(
    (multiple, length) => (multiple / greatestCommonDivisor(multiple, length)) * length,
    1,
  );
}

/**
 * How many predictions every run scores: `requested` (or all the stream allows) rounded down to a
 * multiple of every length, so each length reads exactly the same tokens.
 */
export function scoredTokenCount(tokenCount: number, lengths: readonly number[], requested?: number): number {
  const multiple = commonWindowMultiple(lengths);
  const available = tokenCount - 1;
  const wanted = Math.min(requested ?? available, available);
  const scored = Math.floor(wanted / multiple) * multiple;
  if (scored < multiple) {
    throw new RangeError(
      `${tokenCount} tokens are too few: every length (${lengths.join(", ")}) must score the same tokens, ` +
        `which needs a multiple of ${multiple} predictions plus one token`,
    );
  }
  return scored;
}

/**
 * Buckets that make the range past the trained context L visible: [0, L), [L, 2L), [2L, 4L), ...
 * up to the window length (for L = 512 at 2048: 0-511, 512-1023, 1024-2047).
 */
export function trainedContextBuckets(trainedContext: number, length: number): PositionRange[] {
  const buckets: PositionRange[] = [{ start: 0, end: Math.min(trainedContext, length) }];
  let start = trainedContext;
  let end = 2 * trainedContext;
  while (start < length) {
    buckets.push({ start, end: Math.min(end, length) });
    start = end;
    end *= 2;
  }
  return buckets;
}

export async function evaluatePerplexity(
  model: SelfExtendModelV1,
  tokens: ArrayLike<number>,
  options: PerplexityEvaluationOptions,
): Promise<PerplexityCell[]> {
  const { runs, signal, onProgress, onCell } = options;
  if (runs.length === 0) throw new RangeError("no runs to evaluate");
  const lengths = runs.map((run) => run.length);
  const scored = scoredTokenCount(tokens.length, lengths, options.scoredTokens);
  const longest = Math.max(...lengths);
  const curveWidth = options.curveBucketWidth ?? Math.max(1, Math.ceil(longest / 64));
  const trainedContext = model.info.trainedContext;
  const bucketsOf = options.buckets ?? ((length: number) => trainedContextBuckets(trainedContext, length));
  const tokensTotal = scored * runs.length;
  const cells: PerplexityCell[] = [];

  for (const [index, run] of runs.entries()) {
    signal?.throwIfAborted();
    const reported = bucketsOf(run.length);
    const curveRanges: PositionRange[] = [];
    for (let start = 0; start < run.length; start += curveWidth) {
      curveRanges.push({ start, end: Math.min(start + curveWidth, run.length) });
    }
    const started = performance.now();
    const beyondLimit =
      run.method === "self-extend" && run.length > largestUsableContext(trainedContext, run.selfExtend);
    const result = await computePerplexity(model, tokens, {
      contextSize: run.length,
      selfExtend: run.selfExtend,
      windowCount: scored / run.length,
      buckets: [...reported, ...curveRanges],
      // Reference-only: lets a config run past (L - W) * G + W, to measure what that costs.
      sessionOptions: beyondLimit ? { allowBeyondUsableContext: true } : undefined,
      signal,
      onProgress: ({ windowsDone }) =>
        onProgress?.({ tokensDone: index * scored + windowsDone * run.length, tokensTotal, run }),
    });
    const cell: PerplexityCell = {
      ...run,
      label: runLabel(run),
      perplexity: result.perplexity,
      meanNegativeLogLikelihood: result.meanNegativeLogLikelihood,
      predictionCount: result.predictionCount,
      windowCount: result.windowCount,
      buckets: result.buckets.slice(0, reported.length),
      curve: {
        bucketWidth: curveWidth,
        meanNegativeLogLikelihood: result.buckets
          .slice(reported.length)
          .map((bucket) => Math.log(bucket.perplexity)),
      },
      seconds: (performance.now() - started) / 1000,
    };
    cells.push(cell);
    onCell?.(cell, cells);
  }
  return cells;
}
