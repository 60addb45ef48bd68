/**
 * Resuming `eval --out r.json`: a rerun with the same settings keeps the finished cells in the file
 * and evaluates only the missing ones; a file from other settings is never overwritten without
 * `--force`. The file itself is only ever replaced by a rename (the evaluation package writes it
 * atomically), so an interrupt at any moment leaves a complete previous or new version.
 */
import { readFileSync } from "node:fs";
import type { EvaluationReport } from "@self-extend/evaluation";
import { CliUsageError } from "./cli-error.js";

/** What must match for finished cells to be reused: everything that changes a cell's numbers. */
export type ResultIdentity = Pick<
  EvaluationReport<unknown>,
  "evaluation" | "formatVersion" | "backend" | "settings"
> & { readonly modelSha256: string };

/** JSON with sorted keys, so two equal settings compare equal whatever their key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item !== null && typeof item === "object" && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : item,
  );
}

function differences(previous: EvaluationReport<unknown>, identity: ResultIdentity): string[] {
  const found: string[] = [];
  if (previous.evaluation !== identity.evaluation) found.push(`evaluation ${previous.evaluation}`);
  if (previous.formatVersion !== identity.formatVersion) found.push(`format ${previous.formatVersion}`);
  if (previous.backend !== identity.backend) found.push(`backend ${previous.backend}`);
  if (previous.model?.sha256 !== identity.modelSha256) found.push("another model");
  const settings = previous.settings ?? {};
  const keys = new Set([...Object.keys(settings), ...Object.keys(identity.settings)]);
  for (const key of [...keys].sort()) {
    if (canonical(settings[key]) !== canonical(identity.settings[key])) {
      found.push(`${key} ${canonical(settings[key]) ?? "(none)"}`);
    }
  }
  return found;
}

/**
 * The finished cells of `outPath` when it holds results of the same settings; none when there is
 * no file or `force` is set. Refuses a file of other settings or one that is not a results file.
 */
export function finishedCells<Cell>(
  outPath: string | undefined,
  identity: ResultIdentity,
  force: boolean,
): Cell[] {
  if (outPath === undefined || force) return [];
  let text: string;
  try {
    text = readFileSync(outPath, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new CliUsageError(`--out ${outPath} cannot be read (${(error as NodeJS.ErrnoException).code})`);
  }
  let previous: EvaluationReport<Cell>;
  try {
    previous = JSON.parse(text) as EvaluationReport<Cell>;
    if (!Array.isArray(previous.cells)) throw new Error("no cells");
  } catch {
    throw new CliUsageError(
      `--out ${outPath} exists and is not an eval results file; give a new file or --force to replace it`,
    );
  }
  const changed = differences(previous as EvaluationReport<unknown>, identity);
  if (changed.length > 0) {
    throw new CliUsageError(
      `--out ${outPath} holds results of other settings (there: ${changed.join("; ").slice(0, 300)}); give a new file or --force to replace it`,
    );
  }
  return previous.cells;
}

/** The cells in the order an uninterrupted run produces them: by run, then by `order`. */
export function inRunOrder<Cell>(
  cells: readonly Cell[],
  keys: readonly string[],
  keyOf: (cell: Cell) => string,
) {
  const position = new Map(keys.map((key, index) => [key, index]));
  return [...cells].sort((a, b) => (position.get(keyOf(a)) ?? 0) - (position.get(keyOf(b)) ?? 0));
}

/** A run's identity inside one results file: its length and attention. */
export function runKey(run: {
  readonly length: number;
  readonly method: string;
  readonly selfExtend: { readonly groupSize: number; readonly neighborWindow: number };
}): string {
  return `${run.length} ${run.method} ${run.selfExtend.groupSize} ${run.selfExtend.neighborWindow}`;
}
