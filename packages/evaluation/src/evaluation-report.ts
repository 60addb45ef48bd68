/**
 * The result document of an evaluation, and a writer that rewrites its files after every finished
 * cell (atomically, see result-file.ts). An interrupted run leaves a valid document with
 * `complete: false` and every cell finished before the interrupt.
 */
import { writeFileAtomically, writeJsonFileAtomically } from "./result-file.js";

export interface ReportModel {
  /** The model file as given (GGUF or llama2.c checkpoint). */
  readonly path: string;
  /** sha256 of the model file's bytes. */
  readonly sha256: string;
  readonly architecture: string;
  readonly trainedContext: number;
  readonly vocabularySize: number;
  readonly tokenizer?: string;
}

export interface EvaluationReport<Cell> {
  readonly evaluation: "perplexity" | "passkey";
  readonly formatVersion: 1;
  /** argv as run, so the run can be repeated and compared. */
  readonly commandLine: readonly string[];
  readonly startedAt: string;
  readonly finishedAt: string | null;
  /** False while running and after an interrupt: `cells` holds the finished ones only. */
  readonly complete: boolean;
  readonly backend: string;
  readonly model: ReportModel;
  readonly settings: Readonly<Record<string, unknown>>;
  readonly cells: readonly Cell[];
}

export interface ReportWriter<Cell> {
  /** Replaces the cells and rewrites the files. */
  update(cells: readonly Cell[]): EvaluationReport<Cell>;
  /** Marks the run finished (complete or not) and rewrites the files. */
  finish(complete: boolean): EvaluationReport<Cell>;
  current(): EvaluationReport<Cell>;
}

export function createReportWriter<Cell>(options: {
  readonly report: Omit<EvaluationReport<Cell>, "cells" | "complete" | "finishedAt">;
  readonly jsonPath?: string;
  readonly plotPath?: string;
  readonly renderPlot?: (cells: readonly Cell[]) => string;
}): ReportWriter<Cell> {
  let report: EvaluationReport<Cell> = { ...options.report, finishedAt: null, complete: false, cells: [] };
  const write = () => {
    if (options.jsonPath) writeJsonFileAtomically(options.jsonPath, report);
    if (options.plotPath && options.renderPlot)
      writeFileAtomically(options.plotPath, options.renderPlot(report.cells));
    return report;
  };
  return {
    update(cells) {
      report = { ...report, cells: [...cells] };
      return write();
    },
    finish(complete) {
      report = { ...report, complete, finishedAt: new Date().toISOString() };
      return write();
    },
    current: () => report,
  };
}
