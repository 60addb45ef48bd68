import { SelfExtendConfigError } from "./errors.js";

/**
 * The two numbers that define Self-Extend.
 *
 * - `groupSize` (G): how many far positions share one grouped position. G = 1 is plain attention.
 * - `neighborWindow` (W): keys with `i - j < W` keep their exact distance.
 *
 * W must be a multiple of G so that the group block of positions ends exactly where the neighbor
 * block begins (llama.cpp asserts the same; see the spec notes).
 */
export interface SelfExtendConfig {
  readonly groupSize: number;
  readonly neighborWindow: number;
}

/** G = 1 reproduces plain attention for any W; W = 1 is the smallest valid window. */
export const plainAttentionConfig: SelfExtendConfig = Object.freeze({ groupSize: 1, neighborWindow: 1 });

function requirePositiveInteger(field: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new SelfExtendConfigError(field, value, "must be an integer");
  }
  if (value < 1) throw new SelfExtendConfigError(field, value, "must be at least 1");
  if (!Number.isSafeInteger(value)) throw new SelfExtendConfigError(field, value, "must be a safe integer");
  return value;
}

/**
 * Checks a configuration against the spec's rules and returns a frozen copy.
 * Throws {@link SelfExtendConfigError} naming the field, the value and the rule.
 */
export function validateSelfExtendConfig(config: SelfExtendConfig): SelfExtendConfig {
  if (config === null || typeof config !== "object") {
    throw new SelfExtendConfigError("config", config, "must be an object { groupSize, neighborWindow }");
  }
  const groupSize = requirePositiveInteger("groupSize", config.groupSize);
  const neighborWindow = requirePositiveInteger("neighborWindow", config.neighborWindow);
  if (neighborWindow % groupSize !== 0) {
    throw new SelfExtendConfigError(
      "neighborWindow",
      neighborWindow,
      `must be a multiple of groupSize (${groupSize}); ${neighborWindow} % ${groupSize} = ${neighborWindow % groupSize}`,
    );
  }
  return Object.freeze({ groupSize, neighborWindow });
}

/** Builds a validated configuration. */
export function createSelfExtendConfig(groupSize: number, neighborWindow: number): SelfExtendConfig {
  return validateSelfExtendConfig({ groupSize, neighborWindow });
}

export function isPlainAttention(config: SelfExtendConfig): boolean {
  return config.groupSize === 1;
}
