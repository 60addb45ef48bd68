import { planSelfExtend } from "@self-extend/core";
import { integerFlag, parseFlags } from "../cli-arguments.js";
import type { Command } from "../command.js";

export const planCommand: Command = {
  name: "plan",
  summary: "suggest Self-Extend settings (G, W) for a trained and a target context",
  usage: `self-extend plan --trained-context L --target-context N [--json]

Suggests the smallest group size G that lets a model trained on L tokens read N tokens with every
relative position <= L - 1, and the largest neighbor window W in [L/8, L/2] for that G.

  --trained-context L   the model's trained context (GGUF context_length)
  --target-context N    how many tokens it must read
  --json                print {"trainedContext","targetContext","groupSize","neighborWindow",
                        "largestRelativePosition","largestUsableContext","plainAttention","reason"}`,
  async run(args, terminal) {
    const { values } = parseFlags(
      args,
      {
        "trained-context": { type: "string" },
        "target-context": { type: "string" },
        json: { type: "boolean" },
      },
      "plan",
    );
    const trainedContext = integerFlag(values, "trained-context", { required: true, smallest: 2 })!;
    const targetContext = integerFlag(values, "target-context", { required: true })!;
    const plan = planSelfExtend({ trainedContext, targetContext });
    const { groupSize, neighborWindow } = plan.config;
    if (values.json) {
      terminal.out(
        `${JSON.stringify({
          trainedContext,
          targetContext,
          groupSize,
          neighborWindow,
          largestRelativePosition: plan.largestRelativePosition,
          largestUsableContext: plan.largestUsableContext,
          plainAttention: plan.plainAttention,
          reason: plan.reason,
        })}\n`,
      );
      return 0;
    }
    const lines = [
      `trained context L          ${trainedContext}`,
      `target context N           ${targetContext}`,
      `group size G               ${groupSize}${plan.plainAttention ? " (plain attention)" : ""}`,
      `neighbor window W          ${neighborWindow}`,
      `largest relative position  ${plan.largestRelativePosition} (must be <= L - 1 = ${trainedContext - 1})`,
      `largest usable context     ${plan.largestUsableContext}${plan.plainAttention ? "" : " = (L - W) * G + W"}`,
      `why                        ${plan.reason}`,
      plan.plainAttention ? "" : `use it:                    --group ${groupSize} --window ${neighborWindow}`,
    ].filter((line) => line !== "");
    terminal.out(`${lines.join("\n")}\n`);
    return 0;
  },
};
