import { registeredBackends, UnknownBackendError } from "@self-extend/backends";
import { toJson } from "@self-extend/conformance";
import { formatMatrix, runConformanceApp, writeHtmlReport } from "@self-extend/conformance-app";
import { describeLlamaModel, isOnnxExportPath, readGguf } from "@self-extend/models/node";
import { parseFlags } from "../cli-arguments.js";
import { CliUsageError } from "../cli-error.js";
import type { Command } from "../command.js";
import { requireInputFile, requireInputFolder, requireOutputFolder } from "../input-paths.js";
import { interruptSignal } from "../interrupt.js";
import { createProgress } from "../progress.js";

/**
 * A model the user named must be readable: a truncated or empty file is a failure with its reason
 * (exit 1), never a suite where every case is "not available".
 */
function checkUserModel(path: string): void {
  // An ONNX export is read (and refused with its reason) by the ONNX Runtime adapter.
  if (isOnnxExportPath(path)) return;
  requireInputFile("model", path);
  const gguf = readGguf(path);
  try {
    describeLlamaModel(gguf, path);
  } finally {
    gguf.close();
  }
}

export const conformanceCommand: Command = {
  name: "conformance",
  summary: "check that every adapter on this machine matches the reference (the project's main job)",
  usage: `self-extend conformance [--backend <name>]... [--model <gguf or ONNX export>] [--case <name>]... [--json] [--report <dir>]

Runs the conformance suite: tier 1 position maps against the golden files, tier 2 log-probabilities
at every position against the reference backend, tier 3 greedy tokens at 1x, 2x and 4x the trained
context; every pair of adapters is also compared with each other. Adapters missing on this machine
are reported as "not available" with the reason. Measured-only runs (llama.cpp's fast-prefill) are
shown in parentheses, and say "deviation" where they exceed their mode's documented tolerance: they
are not counted as passed or failed. Exits 1 if anything failed.

  --backend <name>   restrict to these backends (${registeredBackends.map((entry) => entry.name).join(", ")}); repeatable
  --model <gguf>     run the suite on your own model; lengths come from its trained context. An ONNX
                     export (a folder with model.onnx or onnx/model.onnx, or a .onnx file) runs on
                     onnxruntime, its attention rewritten; the reference runs the same weights, read
                     from the graph
  --case <name>      run only these cases; repeatable
  --shared <dir>     a folder holding models/stories260K.bin and models/tok512.bin, for the stories260K
                     cases (found by itself in a development checkout of the repository)
  --cache <dir>      where generated test models are written (default: the OS temp folder)
  --json             print {"specVersion","results":[{"backend","case","status","maxAbsLogitDiff",
                     "firstDivergentToken","reason","weightTypes","tolerance",...}],"summary":{"passed","failed",
                     "notAvailable",...}}; a quantized file's tolerance is picked from its matrices' weight types
  --report <dir>     write a self-contained HTML report (index.html) and conformance.json there`,
  async run(args, terminal) {
    const { values } = parseFlags(
      args,
      {
        backend: { type: "string", multiple: true },
        model: { type: "string" },
        case: { type: "string", multiple: true },
        shared: { type: "string" },
        cache: { type: "string" },
        json: { type: "boolean" },
        report: { type: "string" },
      },
      "conformance",
    );
    if (values.report !== undefined) requireOutputFolder("report", values.report as string);
    if (values.cache !== undefined) requireOutputFolder("cache", values.cache as string);
    if (values.shared !== undefined) requireInputFolder("shared", values.shared as string);
    if (values.model !== undefined) checkUserModel(values.model as string);
    const progress = createProgress(terminal, "conformance");
    let report: Awaited<ReturnType<typeof runConformanceApp>>;
    try {
      report = await runConformanceApp({
        backends: values.backend as string[] | undefined,
        userModelPath: values.model as string | undefined,
        sharedFolder: values.shared as string | undefined,
        cacheFolder: values.cache as string | undefined,
        caseNames: values.case as string[] | undefined,
        onProgress: ({ completed, total, backend, case: name }) =>
          progress.update(completed, total, `${backend} ${name}`),
        signal: interruptSignal(),
      });
    } catch (error) {
      if (error instanceof UnknownBackendError) throw new CliUsageError(error.message);
      throw error;
    } finally {
      progress.done();
    }
    if (report.results.length === 0) {
      const given = [
        ...((values.case as string[] | undefined) ?? []).map((name) => `--case ${name}`),
        ...((values.backend as string[] | undefined) ?? []).map((name) => `--backend ${name}`),
      ];
      throw new CliUsageError(
        `no conformance case matched ${given.length > 0 ? given.join(" ") : "the flags"} (see \`self-extend conformance --help\`)`,
      );
    }
    if (values.report !== undefined) {
      const path = writeHtmlReport(
        values.report as string,
        report,
        ["self-extend", "conformance", ...args].join(" "),
      );
      terminal.error(`report written to ${path}\n`);
    }
    if (values.json) terminal.out(`${toJson(report)}\n`);
    else {
      terminal.out(formatMatrix(report.results));
      const { passed, failed, notAvailable, skipped, informational } = report.summary;
      terminal.out(
        `\nconformance: ${passed} passed, ${failed} failed, ${notAvailable} not available, ${skipped} skipped, ${informational} informational (measured, not counted)\n`,
      );
    }
    return report.summary.failed > 0 ? 1 : 0;
  },
};
