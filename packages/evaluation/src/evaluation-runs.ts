/**
 * Which (length, attention) runs an evaluation makes: Self-Extend with the given (G, W) or, when
 * none is given, core's planner per length (plain attention where the length fits the trained
 * context), and optionally plain attention at every length for comparison.
 */
import {
  isPlainAttention,
  largestRelativePosition,
  plainAttentionConfig,
  planSelfExtend,
  type SelfExtendConfig,
  validateSelfExtendConfig,
} from "@self-extend/core";

export type AttentionMethod = "plain" | "self-extend";

export interface EvaluationRun {
  /** Tokens per window (perplexity) or per prompt (passkey). */
  readonly length: number;
  readonly method: AttentionMethod;
  readonly selfExtend: SelfExtendConfig;
  /** True when the planner chose the config (no explicit G and W). */
  readonly planned: boolean;
  /** The largest relative position the run's sequences reach (prompt plus answer for passkey). */
  readonly largestRelativePosition: number;
  /** True when that position is past L - 1: the model sees distances it was never trained on. */
  readonly beyondTrainedContext: boolean;
}

export interface PlanRunsOptions {
  readonly lengths: readonly number[];
  readonly trainedContext: number;
  /** Explicit (G, W) for every length; without it the planner picks per length. */
  readonly selfExtend?: SelfExtendConfig;
  /** Adds a plain-attention run at every length that does not already have one. */
  readonly comparePlain?: boolean;
  /** Tokens each sequence holds beyond `length` (the passkey answer); planning covers them. */
  readonly extraTokens?: number;
}

/** A readable name for a run: "plain" or "Self-Extend G=8 W=256". */
export function runLabel(run: Pick<EvaluationRun, "method" | "selfExtend">): string {
  return run.method === "plain"
    ? "plain"
    : `Self-Extend G=${run.selfExtend.groupSize} W=${run.selfExtend.neighborWindow}`;
}

function describeRun(
  length: number,
  totalLength: number,
  selfExtend: SelfExtendConfig,
  planned: boolean,
  trainedContext: number,
): EvaluationRun {
  const plain = isPlainAttention(selfExtend);
  const config = plain ? plainAttentionConfig : selfExtend;
  const largest = plain ? totalLength - 1 : largestRelativePosition(totalLength, config);
  return {
    length,
    method: plain ? "plain" : "self-extend",
    selfExtend: { groupSize: config.groupSize, neighborWindow: config.neighborWindow },
    planned,
    largestRelativePosition: largest,
    beyondTrainedContext: largest > trainedContext - 1,
  };
}

export function planEvaluationRuns(options: PlanRunsOptions): EvaluationRun[] {
  const { lengths, trainedContext, comparePlain = false, extraTokens = 0 } = options;
  const explicit =
    options.selfExtend === undefined ? undefined : validateSelfExtendConfig(options.selfExtend);
  const runs: EvaluationRun[] = [];
  for (const length of lengths) {
    if (!Number.isSafeInteger(length) || length < 2)
      throw new RangeError(`length ${length} must be an integer >= 2`);
    const total = length + extraTokens;
    const config = explicit ?? planSelfExtend({ trainedContext, targetContext: total }).config;
    const main = describeRun(length, total, config, explicit === undefined, trainedContext);
    runs.push(main);
    if (comparePlain && main.method !== "plain") {
      runs.push(describeRun(length, total, plainAttentionConfig, false, trainedContext));
    }
  }
  return runs;
}
