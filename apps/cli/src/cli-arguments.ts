import { type ParseArgsConfig, parseArgs } from "node:util";
import { CliUsageError } from "./cli-error.js";

export type OptionSpec = NonNullable<ParseArgsConfig["options"]>;

/** parseArgs with our error wording: unknown or malformed flags become one clear line. */
export function parseFlags(
  args: readonly string[],
  options: OptionSpec,
  command: string,
): { values: Record<string, string | boolean | undefined> } {
  try {
    const { values } = parseArgs({
      args: joinNegativeValues(args, options),
      options: { ...options, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    });
    return { values: values as Record<string, string | boolean | undefined> };
  } catch (error) {
    const message = (error as Error).message.replace(/\. To specify a positional argument.*$/s, "");
    throw new CliUsageError(`${command}: ${message} (see \`self-extend ${command} --help\`)`);
  }
}

/**
 * parseArgs reads `--group -2` as a flag without its value followed by an unknown flag `-2`. A value
 * that looks like a negative number is joined to its flag (`--group=-2`), so the range check can
 * name it ("--group -2 must be >= 1").
 */
function joinNegativeValues(args: readonly string[], options: OptionSpec): string[] {
  const joined: string[] = [];
  for (let index = 0; index < args.length; index++) {
    const argument = args[index] as string;
    const next = args[index + 1];
    const name = argument.startsWith("--") ? argument.slice(2) : undefined;
    if (
      name !== undefined &&
      options[name]?.type === "string" &&
      next !== undefined &&
      /^-(\d|\.\d|Infinity)/.test(next)
    ) {
      joined.push(`${argument}=${next}`);
      index++;
    } else {
      joined.push(argument);
    }
  }
  return joined;
}

/** A flag that must be an integer in [smallest, largest]; names the flag, value and rule when not. */
export function integerFlag(
  values: Record<string, unknown>,
  flag: string,
  {
    smallest = 1,
    largest,
    required = false,
    why,
  }: { smallest?: number; largest?: number; required?: boolean; why?: string } = {},
): number | undefined {
  const raw = values[flag];
  if (raw === undefined) {
    if (required) throw new CliUsageError(`missing --${flag}`);
    return undefined;
  }
  const text = String(raw);
  const value = Number(text);
  if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(value)) {
    throw new CliUsageError(`--${flag} ${JSON.stringify(text)} is not an integer`);
  }
  if (value < smallest) throw new CliUsageError(`--${flag} ${value} must be >= ${smallest}`);
  if (largest !== undefined && value > largest) {
    throw new CliUsageError(
      `--${flag} ${value} must be <= ${largest}${why === undefined ? "" : ` (${why})`}`,
    );
  }
  return value;
}

export function numberFlag(values: Record<string, unknown>, flag: string): number | undefined {
  const raw = values[flag];
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (String(raw).trim() === "" || !Number.isFinite(value)) {
    throw new CliUsageError(`--${flag} ${JSON.stringify(String(raw))} is not a number`);
  }
  return value;
}

export function stringFlag(
  values: Record<string, unknown>,
  flag: string,
  required = false,
): string | undefined {
  const raw = values[flag];
  if (raw === undefined && required) throw new CliUsageError(`missing --${flag}`);
  return raw === undefined ? undefined : String(raw);
}
