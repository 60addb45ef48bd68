/**
 * Perplexity the way the spec's stories260K table was measured, over any v1 model (the CLI's eval
 * runs it on every backend):
 *
 * - the text is one document: blocks separated by blank lines are joined by a single newline and
 *   encoded once with one BOS in front ({@link tokenizeAsOneDocument});
 * - the token stream is cut into non-overlapping windows of `contextSize` tokens, each evaluated in
 *   a fresh session state;
 * - EVERY position of a window predicts the next token of the stream, so the last position of a
 *   window predicts the first token of the next one. n windows score n * contextSize predictions and
 *   need n * contextSize + 1 tokens. (This is the layout that reproduces 3.721 at 512 plain; scoring
 *   only the contextSize - 1 targets inside each window gives 3.718.)
 *
 * Buckets report perplexity over ranges of positions within the window (the position whose logits
 * are scored, i.e. the token has position + 1 tokens of context), such as 1024-2047.
 */
import type { SelfExtendConfig, SelfExtendModelV1, SessionOptionsV1 } from "@self-extend/core";

/** Positions `start` .. `end - 1` within a window. */
export interface PositionRange {
  readonly start: number;
  readonly end: number;
}

export interface PerplexityProgress {
  readonly windowsDone: number;
  readonly windowCount: number;
}

export interface PerplexityOptions {
  /** Window length N: tokens per window, and the session's context size. */
  readonly contextSize: number;
  readonly selfExtend: SelfExtendConfig;
  /** How many windows to score; defaults to as many as the tokens allow. */
  readonly windowCount?: number;
  /** Ranges of window positions to report separately. */
  readonly buckets?: readonly PositionRange[];
  /** Further session options, passed through (for example the reference's allowBeyondUsableContext). */
  readonly sessionOptions?: Readonly<Record<string, unknown>>;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: PerplexityProgress) => void;
}

export interface BucketPerplexity extends PositionRange {
  readonly perplexity: number;
  readonly predictionCount: number;
}

export interface PerplexityResult {
  readonly perplexity: number;
  /** Mean negative log-likelihood per prediction, in nats. */
  readonly meanNegativeLogLikelihood: number;
  readonly predictionCount: number;
  readonly windowCount: number;
  readonly contextSize: number;
  readonly buckets: readonly BucketPerplexity[];
}

/** The part of a tokenizer this module needs (the models package's Tokenizer has it). */
export interface DocumentEncoder {
  encode(text: string, options?: { readonly addBos?: boolean; readonly addEos?: boolean }): number[];
}

/** Blocks separated by blank lines, trimmed and joined by one newline: the text as one document. */
export function joinBlocksAsOneDocument(text: string): string {
  return text
    .split(/\n[ \t]*\n/)
    .map((block) => block.trim())
    .filter((block) => block.length > 0)
    .join("\n");
}

/** Encodes the text as one document with a single BOS in front and no EOS. */
export function tokenizeAsOneDocument(text: string, encoder: DocumentEncoder): number[] {
  return encoder.encode(joinBlocksAsOneDocument(text), { addBos: true, addEos: false });
}

/** -log softmax(logits)[target], in float64, for the row of `vocabularySize` values at `offset`. */
export function negativeLogLikelihood(
  logits: ArrayLike<number>,
  offset: number,
  vocabularySize: number,
  target: number,
): number {
  let largest = Number.NEGATIVE_INFINITY;
  for (let index = 0; index < vocabularySize; index++) largest = Math.max(largest, logits[offset + index]);
  let total = 0;
  for (let index = 0; index < vocabularySize; index++) total += Math.exp(logits[offset + index] - largest);
  return Math.log(total) + largest - logits[offset + target];
}

export async function computePerplexity(
  model: SelfExtendModelV1,
  tokens: ArrayLike<number>,
  options: PerplexityOptions,
): Promise<PerplexityResult> {
  const { contextSize, selfExtend, signal, onProgress } = options;
  if (!Number.isSafeInteger(contextSize) || contextSize < 1) {
    throw new RangeError(`contextSize = ${contextSize} is invalid: must be an integer >= 1`);
  }
  const available = Math.floor((tokens.length - 1) / contextSize);
  const windowCount = options.windowCount ?? available;
  if (!Number.isSafeInteger(windowCount) || windowCount < 1 || windowCount > available) {
    throw new RangeError(
      `windowCount = ${windowCount} is invalid: ${tokens.length} tokens give 1 .. ${available} windows of ${contextSize} ` +
        "(each window also needs the token after it)",
    );
  }
  const buckets = (options.buckets ?? []).map((range) => {
    if (
      !(
        Number.isInteger(range.start) &&
        Number.isInteger(range.end) &&
        0 <= range.start &&
        range.start < range.end
      )
    ) {
      throw new RangeError(`bucket ${range.start}..${range.end} is invalid: need integers 0 <= start < end`);
    }
    return { start: range.start, end: Math.min(range.end, contextSize), sum: 0, count: 0 };
  });

  const sessionOptions: SessionOptionsV1 = { ...options.sessionOptions, selfExtend, contextSize };
  const session = await model.createSession(sessionOptions);
  let sum = 0;
  let count = 0;
  try {
    for (let window = 0; window < windowCount; window++) {
      signal?.throwIfAborted();
      const start = window * contextSize;
      const windowTokens = Array.from({ length: contextSize }, (_, index) => tokens[start + index]);
      await session.reset();
      const { logits, vocabularySize } = await session.evaluate(windowTokens, { logits: "all", signal });
      for (let position = 0; position < contextSize; position++) {
        const loss = negativeLogLikelihood(
          logits,
          position * vocabularySize,
          vocabularySize,
          tokens[start + position + 1],
        );
        sum += loss;
        count += 1;
        for (const bucket of buckets) {
          if (position >= bucket.start && position < bucket.end) {
            bucket.sum += loss;
            bucket.count += 1;
          }
        }
      }
      onProgress?.({ windowsDone: window + 1, windowCount });
    }
  } finally {
    await session.dispose();
  }
  return {
    perplexity: Math.exp(sum / count),
    meanNegativeLogLikelihood: sum / count,
    predictionCount: count,
    windowCount,
    contextSize,
    buckets: buckets.map(({ start, end, sum: bucketSum, count: bucketCount }) => ({
      start,
      end,
      perplexity: bucketCount > 0 ? Math.exp(bucketSum / bucketCount) : Number.NaN,
      predictionCount: bucketCount,
    })),
  };
}
