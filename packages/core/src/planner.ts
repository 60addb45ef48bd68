/**
 * Suggests (G, W) for a model trained on L positions that must read N tokens.
 *
 * The authors' guidance (spec notes): W between L/8 and L/2; choose G so that the grouped span
 * W + (N - W)/G is about 1/2 to 2/3 of L; larger G degrades quality, so prefer the smallest G.
 * The hard rule is that every relative position stays <= L - 1, i.e. N <= (L - W) * G + W.
 *
 * So: the smallest G for which some W in [L/8, L/2] keeps the largest relative position within
 * 2/3 of L (headroom: long distances are the rarest in training); if no G allows that, the
 * smallest G that keeps it within L - 1. For that G we take the largest window that still fits,
 * because more exact neighbors help (stories260K at 2048: W=256 beats W=128 beats W=64 with G=8).
 */
import { type SelfExtendConfig, validateSelfExtendConfig } from "./config.js";
import { PlanningError, SelfExtendConfigError } from "./errors.js";
import { largestRelativePosition, largestUsableContext } from "./position-map.js";

export interface PlanOptions {
  /** L: the context the model was trained on (GGUF `context_length`). */
  readonly trainedContext: number;
  /** N: how many tokens the model must read. */
  readonly targetContext: number;
  /** Smallest W as a fraction of L (default 1/8). */
  readonly smallestWindowFraction?: number;
  /** Largest W as a fraction of L (default 1/2). */
  readonly largestWindowFraction?: number;
  /**
   * Smallest W in tokens, above the fraction's floor: a model's sliding window, so that its local
   * layers' windows lie inside W (llama.cpp needs that for Gemma 2 and 3). Must not exceed the largest W.
   */
  readonly smallestWindow?: number;
}

export interface SelfExtendPlan {
  readonly config: SelfExtendConfig;
  readonly trainedContext: number;
  readonly targetContext: number;
  /** The largest relative position N tokens reach with this config (always <= L - 1). */
  readonly largestRelativePosition: number;
  /** (L - W) * G + W: the longest sequence this config can take. */
  readonly largestUsableContext: number;
  /** True when N <= L and no extension is needed (G = 1). */
  readonly plainAttention: boolean;
  /** Why this config was chosen, in one sentence. */
  readonly reason: string;
}

function requireInteger(field: string, value: number, smallest: number): void {
  if (!Number.isInteger(value) || value < smallest) {
    throw new SelfExtendConfigError(field, value, `must be an integer >= ${smallest}`);
  }
}

/**
 * Largest W that is a multiple of G, lies in [smallest, largest], and keeps the largest relative
 * position of N tokens at or below `positionLimit`.
 */
function largestFittingWindow(
  positionLimit: number,
  targetContext: number,
  groupSize: number,
  smallest: number,
  largest: number,
): number | undefined {
  // floor((N-1)/G) + W - W/G <= limit  <=>  (W/G) * (G - 1) <= limit - floor((N-1)/G)
  const slack = positionLimit - Math.floor((targetContext - 1) / groupSize);
  if (slack < 0) return undefined;
  const window = Math.min(Math.floor(largest / groupSize), Math.floor(slack / (groupSize - 1))) * groupSize;
  return window >= Math.max(smallest, groupSize) ? window : undefined;
}

/**
 * The longest context any config the planner allows (W % G == 0, W <= L/2) reaches for a trained
 * context L: for each G the smallest window, W = G, gives the most room.
 */
export function longestReachableContext(trainedContext: number): number {
  let best = trainedContext;
  for (let groupSize = 2; groupSize <= Math.floor(trainedContext / 2); groupSize++) {
    best = Math.max(best, (trainedContext - groupSize) * groupSize + groupSize);
  }
  return best;
}

/**
 * The `smallestWindow` to plan with for a model with sliding-window (local) layers: the window
 * itself when the planner's range (W <= L/2) can hold it, so every local layer's window lies
 * inside W, as llama.cpp needs for Gemma 2 and 3; otherwise undefined (no W the planner picks covers it).
 */
export function smallestWindowForSlidingWindow(
  trainedContext: number,
  slidingWindow: number | undefined,
): number | undefined {
  return slidingWindow !== undefined && slidingWindow <= Math.floor(trainedContext / 2)
    ? slidingWindow
    : undefined;
}

export function planSelfExtend(options: PlanOptions): SelfExtendPlan {
  const { trainedContext, targetContext } = options;
  requireInteger("trainedContext", trainedContext, 2);
  requireInteger("targetContext", targetContext, 1);
  const smallestFraction = options.smallestWindowFraction ?? 1 / 8;
  const largestFraction = options.largestWindowFraction ?? 1 / 2;
  if (!(smallestFraction > 0 && smallestFraction <= largestFraction && largestFraction < 1)) {
    throw new SelfExtendConfigError(
      "smallestWindowFraction/largestWindowFraction",
      [smallestFraction, largestFraction],
      "need 0 < smallest <= largest < 1",
    );
  }

  const describe = (config: SelfExtendConfig, plainAttention: boolean, reason: string): SelfExtendPlan => ({
    config: validateSelfExtendConfig(config),
    trainedContext,
    targetContext,
    largestRelativePosition: largestRelativePosition(targetContext, config),
    largestUsableContext: largestUsableContext(trainedContext, config),
    plainAttention,
    reason,
  });

  if (targetContext <= trainedContext) {
    return describe(
      { groupSize: 1, neighborWindow: trainedContext },
      true,
      `N = ${targetContext} fits in the trained context L = ${trainedContext}: plain attention (G = 1)`,
    );
  }

  const largestWindow = Math.floor(trainedContext * largestFraction);
  if (options.smallestWindow !== undefined) {
    requireInteger("smallestWindow", options.smallestWindow, 1);
    if (options.smallestWindow > largestWindow) {
      throw new SelfExtendConfigError(
        "smallestWindow",
        options.smallestWindow,
        `must be <= the largest window the planner considers (${largestWindow} = L x ${largestFraction})`,
      );
    }
  }
  const fractionFloor = Math.max(1, Math.ceil(trainedContext * smallestFraction));
  const smallestWindow = Math.max(fractionFloor, options.smallestWindow ?? 1);
  const windowRangeLabel = smallestWindow > fractionFloor ? "smallestWindow, L/2" : "L/8, L/2";
  // Smaller windows never reach further: W >= G, and (L - W) * G + W peaks at G = W = L/2, which
  // is inside the range. So a target no config in range reaches is out of reach altogether.
  const headroomLimit = Math.floor((2 * trainedContext) / 3);
  for (const [positionLimit, note] of [
    [headroomLimit, `relative positions within 2/3 of L (${headroomLimit})`],
    [trainedContext - 1, `relative positions within L - 1 (no G keeps them within 2/3 of L)`],
  ] as const) {
    for (let groupSize = 2; groupSize <= largestWindow; groupSize++) {
      const window = largestFittingWindow(
        positionLimit,
        targetContext,
        groupSize,
        smallestWindow,
        largestWindow,
      );
      if (window !== undefined) {
        return describe(
          { groupSize, neighborWindow: window },
          false,
          `smallest G that reads N = ${targetContext} with W in [${windowRangeLabel}] = [${smallestWindow}, ${largestWindow}] and ${note}; the largest such W`,
        );
      }
    }
  }
  const reachable = longestReachableContext(trainedContext);
  throw new PlanningError(
    `no Self-Extend config lets a model trained on L = ${trainedContext} tokens read N = ${targetContext}: ` +
      `every config needs N <= (L - W) * G + W with W % G == 0 and W <= L/2, and the longest reachable is ${reachable}`,
  );
}
