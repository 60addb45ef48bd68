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
      args: [...args],
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

/** A flag that must be an integer >= smallest; names the flag and value when it is not. */
export function integerFlag(
  values: Record<string, unknown>,
  flag: string,
  { smallest = 1, required = false }: { smallest?: number; required?: boolean } = {},
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
