/**
 * Cases, tolerances and skips are data shipped with the package (data/, schema/), validated
 * against their JSON schemas when read, so a malformed file fails loudly with its path.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2020 } from "ajv/dist/2020.js";

const packageFolder = fileURLToPath(new URL("..", import.meta.url));
export const dataFolder = join(packageFolder, "data");
export const schemaFolder = join(packageFolder, "schema");

const ajv = new Ajv2020({ allErrors: true, strict: false });
const validators = new Map<string, ReturnType<typeof ajv.compile>>();

export class ConformanceDataError extends Error {
  override readonly name = "ConformanceDataError";
}

export function readValidatedJson<T>(path: string, schemaName: string): T {
  let validate = validators.get(schemaName);
  if (validate === undefined) {
    validate = ajv.compile(JSON.parse(readFileSync(join(schemaFolder, schemaName), "utf8")));
    validators.set(schemaName, validate);
  }
  let content: unknown;
  try {
    content = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new ConformanceDataError(`${path}: cannot be read as JSON (${(error as Error).message})`);
  }
  if (!validate(content)) {
    const problems = (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message}`).join("; ");
    throw new ConformanceDataError(`${path}: does not match ${schemaName}: ${problems}`);
  }
  return content as T;
}

export function jsonFilesIn(folder: string): string[] {
  return readdirSync(folder)
    .filter((name) => name.endsWith(".json"))
    .sort()
    .map((name) => join(folder, name));
}
