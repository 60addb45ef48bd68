/**
 * Token generation over any v1 session: greedy or seeded temperature sampling, streamed one token
 * at a time, stoppable with an AbortSignal. Adapters get streaming for free through this.
 */
import type { SelfExtendSessionV1 } from "./backend-contract.js";

/** Index of the largest value in `logits[offset .. offset + count)`; ties go to the lowest index. */
export function argmax(logits: ArrayLike<number>, offset = 0, count = logits.length - offset): number {
  let best = 0;
  let bestValue = Number.NEGATIVE_INFINITY;
  for (let index = 0; index < count; index++) {
    const value = logits[offset + index];
    if (value > bestValue) {
      bestValue = value;
      best = index;
    }
  }
  return best;
}

/** Mulberry32: a tiny seeded generator, so sampled runs are reproducible across machines. */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SamplingOptions {
  /** 0 (default) is greedy. */
  readonly temperature?: number;
  readonly seed?: number;
}

export type Sampler = (logits: ArrayLike<number>) => number;

export function createSampler(options: SamplingOptions = {}): Sampler {
  const temperature = options.temperature ?? 0;
  if (!(temperature >= 0) || !Number.isFinite(temperature)) {
    throw new RangeError(`temperature = ${temperature} is invalid: must be a finite number >= 0`);
  }
  if (temperature === 0) return (logits) => argmax(logits);
  const random = createRandom(options.seed ?? 0);
  return (logits) => {
    let largest = Number.NEGATIVE_INFINITY;
    for (let index = 0; index < logits.length; index++) largest = Math.max(largest, logits[index]);
    const weights = new Float64Array(logits.length);
    let total = 0;
    for (let index = 0; index < logits.length; index++) {
      weights[index] = Math.exp((logits[index] - largest) / temperature);
      total += weights[index];
    }
    let target = random() * total;
    for (let index = 0; index < weights.length; index++) {
      target -= weights[index];
      if (target <= 0) return index;
    }
    return weights.length - 1;
  };
}

export interface GenerateOptions extends SamplingOptions {
  readonly maxTokens: number;
  /** Generation stops after producing one of these (it is still yielded). */
  readonly stopTokens?: readonly number[];
  readonly signal?: AbortSignal;
}

/**
 * Evaluates the prompt (its last logits pick the first token), then decodes token by token.
 * Yields each new token as soon as it is chosen.
 */
export async function* generateTokens(
  session: SelfExtendSessionV1,
  prompt: ArrayLike<number>,
  options: GenerateOptions,
): AsyncGenerator<number, void, undefined> {
  const sample = createSampler(options);
  const stop = new Set(options.stopTokens ?? []);
  if (prompt.length === 0) throw new RangeError("prompt must hold at least one token (BOS)");
  const evaluation = await session.evaluate(prompt, { logits: "last", signal: options.signal });
  let logits: Float32Array = evaluation.logits;
  for (let step = 0; step < options.maxTokens; step++) {
    options.signal?.throwIfAborted();
    const token = sample(logits);
    yield token;
    if (stop.has(token) || step === options.maxTokens - 1) return;
    logits = await session.decode(token, { signal: options.signal });
  }
}
