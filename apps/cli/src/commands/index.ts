import type { Command } from "../command.js";
import { conformanceCommand } from "./conformance-command.js";
import { mapCommand } from "./map-command.js";
import { planCommand } from "./plan-command.js";

export const commands: readonly Command[] = [conformanceCommand, planCommand, mapCommand];
