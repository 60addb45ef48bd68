import { BackendUnavailableError, resolveBackend, UnknownBackendError } from "@self-extend/backends";
import type { SelfExtendBackendV1, SelfExtendConfig } from "@self-extend/core";
import { assertWithinUsableContext, planSelfExtend, validateSelfExtendConfig } from "@self-extend/core";
import { integerFlag } from "./cli-arguments.js";
import { CliUsageError } from "./cli-error.js";

/** Loads the `--backend` adapter, or says why it cannot run here. */
export async function chooseBackend(name: string): Promise<SelfExtendBackendV1> {
  try {
    return await resolveBackend(name);
  } catch (error) {
    if (error instanceof UnknownBackendError) {
      throw new CliUsageError(
        `unknown --backend ${JSON.stringify(error.backend)}; known: ${error.known.join(", ")}`,
      );
    }
    if (error instanceof BackendUnavailableError) throw new CliUsageError(error.message);
    throw error;
  }
}

export const selfExtendFlags = {
  group: { type: "string" },
  window: { type: "string" },
  "no-extend": { type: "boolean" },
} as const;

/**
 * `--group G --window W`, `--no-extend` (plain attention), or neither: the planner picks (G, W)
 * for the total length (plain attention when it fits in the trained context).
 */
export function selfExtendFromFlags(
  values: Record<string, unknown>,
  trainedContext: number,
  totalLength: number,
): { config: SelfExtendConfig; note: string } {
  const group = integerFlag(values, "group");
  const window = integerFlag(values, "window");
  if (values["no-extend"]) {
    if (group !== undefined || window !== undefined)
      throw new CliUsageError("--no-extend cannot be combined with --group/--window");
    return { config: { groupSize: 1, neighborWindow: 1 }, note: "plain attention (--no-extend)" };
  }
  if ((group === undefined) !== (window === undefined))
    throw new CliUsageError("--group and --window go together");
  if (group !== undefined && window !== undefined) {
    const config = validateSelfExtendConfig({ groupSize: group, neighborWindow: window });
    // Refuse before any work, so generation never stops half-way with a length error.
    if (config.groupSize > 1) assertWithinUsableContext(totalLength, trainedContext, config);
    return { config, note: `G = ${group}, W = ${window}` };
  }
  const plan = planSelfExtend({ trainedContext, targetContext: Math.max(1, totalLength) });
  const { groupSize, neighborWindow } = plan.config;
  return {
    config: plan.config,
    note: plan.plainAttention
      ? "plain attention (fits in the trained context)"
      : `planned G = ${groupSize}, W = ${neighborWindow}`,
  };
}
