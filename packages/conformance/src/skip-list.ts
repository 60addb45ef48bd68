import { join } from "node:path";
import { dataFolder, readValidatedJson } from "./data-files.js";

export interface SkipEntry {
  readonly backend: string;
  readonly case?: string;
  readonly model?: string;
  readonly reason: string;
}

export function loadSkipList(path = join(dataFolder, "skips.json")): SkipEntry[] {
  return readValidatedJson<{ skips: SkipEntry[] }>(path, "skips.schema.json").skips;
}

export function findSkip(skips: readonly SkipEntry[], backend: string, testCase: string, model: string) {
  return skips.find(
    (skip) =>
      skip.backend === backend &&
      (skip.case === undefined || skip.case === testCase) &&
      (skip.model === undefined || skip.model === model),
  );
}
