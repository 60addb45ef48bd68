import type { Command } from "../command.js";
import { benchCommand } from "./bench-command.js";
import { conformanceCommand } from "./conformance-command.js";
import { evalCommand } from "./eval-command.js";
import { generateCommand } from "./generate-command.js";
import { importLlama2cCommand } from "./import-llama2c-command.js";
import { logitsCommand } from "./logits-command.js";
import { mapCommand } from "./map-command.js";
import { planCommand } from "./plan-command.js";

export const commands: readonly Command[] = [
  conformanceCommand,
  generateCommand,
  evalCommand,
  logitsCommand,
  importLlama2cCommand,
  planCommand,
  mapCommand,
  benchCommand,
];
