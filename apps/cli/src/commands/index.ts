import type { Command } from "../command.js";
import { mapCommand } from "./map-command.js";
import { planCommand } from "./plan-command.js";

export const commands: readonly Command[] = [planCommand, mapCommand];
