/**
 * Reproduces the spec's stories260K perplexity table on the reference backend (about 20 minutes
 * on one core) and writes docs/stories260k-perplexity.{json,svg}; prints a Markdown table.
 *
 *   node --conditions=source --import tsx packages/evaluation/scripts/reproduce-stories260k-table.ts [rows]
 *
 * `rows`: optional comma-separated row indices of the table (0-7), to split the work over processes
 * (each writes docs/stories260k-perplexity-rows-<rows>.{json,svg}); then `merge` joins the parts into
 * docs/stories260k-perplexity.{json,svg} in the table's order and removes them:
 *
 *   ... reproduce-stories260k-table.ts 0,1,2,3,4 & ... reproduce-stories260k-table.ts 5,6,7; ... reproduce-stories260k-table.ts merge
 *
 * The JSON is rewritten after every row, so an interrupted run keeps the rows it finished.
 */
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createTokenizer, readLlama2cTokenizer } from "@self-extend/models/node";
import { createReferenceBackend, tokenizeAsOneDocument } from "@self-extend/reference";
import { sharedModelPaths } from "@self-extend/test-fixtures";
import {
  createReportWriter,
  type EvaluationReport,
  evaluatePerplexity,
  type PerplexityCell,
  renderPerplexityPlot,
  runOfSpecRow,
  sha256OfFile,
  stories260KSpecScoredTokens,
  stories260KSpecTable,
} from "../src/index.js";

const docs = join(import.meta.dirname, "..", "docs");
const subtitle = `stories260K, reference backend (float64), the same ${stories260KSpecScoredTokens} tokens of tinystories_val_256k.txt per run`;

if (process.argv[2] === "merge") {
  const parts = readdirSync(docs).filter((name) => /^stories260k-perplexity-rows-[\d-]+\.json$/.test(name));
  const reports = parts.map(
    (name) => JSON.parse(readFileSync(join(docs, name), "utf8")) as EvaluationReport<PerplexityCell>,
  );
  const key = (length: number, groupSize: number, neighborWindow: number) =>
    `${length}/${groupSize}/${neighborWindow}`;
  const order = stories260KSpecTable.map((row) =>
    key(row.length, row.selfExtend.groupSize, row.selfExtend.neighborWindow),
  );
  // A part stopped after some rows (its other rows run by another process) still counts.
  const unique = new Map<string, PerplexityCell>();
  for (const cell of reports.flatMap((report) => report.cells)) {
    const name = key(cell.length, cell.selfExtend.groupSize, cell.selfExtend.neighborWindow);
    if (!unique.has(name)) unique.set(name, cell);
  }
  const cells = [...unique.values()].sort(
    (a, b) =>
      order.indexOf(key(a.length, a.selfExtend.groupSize, a.selfExtend.neighborWindow)) -
      order.indexOf(key(b.length, b.selfExtend.groupSize, b.selfExtend.neighborWindow)),
  );
  const first = reports[0];
  const writer = createReportWriter<PerplexityCell>({
    report: {
      ...first,
      commandLine: reports.flatMap((report) => [...report.commandLine, ";"]).slice(0, -1),
      startedAt: reports.map((report) => report.startedAt).sort()[0],
      settings: { ...first.settings, lengths: [...new Set(cells.map((cell) => cell.length))] },
    },
    jsonPath: join(docs, "stories260k-perplexity.json"),
    plotPath: join(docs, "stories260k-perplexity.svg"),
    renderPlot: (all) => renderPerplexityPlot(all, { trainedContext: first.model.trainedContext, subtitle }),
  });
  writer.update(cells);
  writer.finish(cells.length === stories260KSpecTable.length);
  for (const name of parts) {
    rmSync(join(docs, name));
    rmSync(join(docs, name.replace(/\.json$/, ".svg")), { force: true });
  }
  console.log(`merged ${parts.length} parts, ${cells.length} rows`);
  process.exit(0);
}
const selected = process.argv[2]?.split(",").map(Number) ?? stories260KSpecTable.map((_, index) => index);
const suffix = process.argv[2] ? `-rows-${selected.join("-")}` : "";
const rows = selected.map((index) => stories260KSpecTable[index]);

const tokenizer = createTokenizer(readLlama2cTokenizer(sharedModelPaths.tokenizer));
const tokens = tokenizeAsOneDocument(readFileSync(sharedModelPaths.validationText, "utf8"), tokenizer);
const model = await createReferenceBackend().loadModel({ path: sharedModelPaths.stories260K });
const trainedContext = model.info.trainedContext;
const runs = rows.map((row) => runOfSpecRow(row, trainedContext));
const writer = createReportWriter<PerplexityCell>({
  report: {
    evaluation: "perplexity",
    formatVersion: 1,
    commandLine: [
      "node",
      "packages/evaluation/scripts/reproduce-stories260k-table.ts",
      ...process.argv.slice(2),
    ],
    startedAt: new Date().toISOString(),
    backend: "reference",
    model: {
      path: "../shared/models/stories260K.bin",
      sha256: await sha256OfFile(sharedModelPaths.stories260K),
      architecture: model.info.architecture,
      trainedContext,
      vocabularySize: model.info.vocabularySize,
      tokenizer: "../shared/models/tok512.bin",
    },
    settings: {
      text: "../shared/models/tinystories_val_256k.txt",
      textSha256: await sha256OfFile(sharedModelPaths.validationText),
      documentLayout: "blocks separated by blank lines joined by one newline, one BOS, no EOS",
      documentTokens: tokens.length,
      scoredTokens: stories260KSpecScoredTokens,
      lengths: [...new Set(runs.map((run) => run.length))],
      selfExtend: "the spec table's rows",
      comparePlain: true,
    },
  },
  jsonPath: join(docs, `stories260k-perplexity${suffix}.json`),
  plotPath: join(docs, `stories260k-perplexity${suffix}.svg`),
  renderPlot: (cells) => renderPerplexityPlot(cells, { trainedContext, subtitle }),
});
writer.update([]);
const cells = await evaluatePerplexity(model, tokens, {
  runs,
  scoredTokens: stories260KSpecScoredTokens,
  onCell: (cell, all) => {
    writer.update(all);
    console.error(
      `${cell.length} ${cell.label}: PPL ${cell.perplexity.toFixed(4)} in ${cell.seconds.toFixed(0)} s`,
    );
  },
});
writer.finish(true);

console.log("| context | method | PPL (spec) | PPL (here) | 1024-2047 (spec) | 1024-2047 (here) |");
console.log("|---|---|---|---|---|---|");
for (const [index, cell] of cells.entries()) {
  const row = rows[index];
  const far = cell.buckets.find((bucket) => bucket.start === 1024 && bucket.end === 2048);
  const diff = (here: number, spec: number) =>
    `${here.toFixed(3)} (${(((here - spec) / spec) * 100).toFixed(2)}%)`;
  console.log(
    `| ${cell.length} | ${cell.label} | ${row.perplexity.toFixed(3)} | ${diff(cell.perplexity, row.perplexity)} | ` +
      `${row.farPerplexity?.toFixed(3) ?? ""} | ${row.farPerplexity && far ? diff(far.perplexity, row.farPerplexity) : ""} |`,
  );
}
