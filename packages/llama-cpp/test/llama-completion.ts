/**
 * llama.cpp's own llama-completion, built for the llama.cpp-compatible tests: its source comes
 * from the llama.cpp release node-llama-cpp bundles (llama/gitRelease.bundle) and it links the
 * very prebuilt libllama, libllama-common and ggml libraries node-llama-cpp loads, so the only
 * difference between the two runs is the driver (llama-completion's main loop vs our scheduler).
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { extractLlamaCppSources, locateNodeLlamaCpp } from "../scripts/llama-cpp-sources.mjs";

const packageFolder = join(import.meta.dirname, "..");

/** Builds (once; cached under native/build) and returns the llama-completion binary and its library folder. */
export function buildLlamaCompletion(): { binary: string; libraries: string } {
  const nodeLlamaCpp = locateNodeLlamaCpp(packageFolder);
  const libraries = nodeLlamaCpp.prebuiltBinaries;
  if (libraries === undefined || !existsSync(join(libraries, "libllama-common.so"))) {
    throw new Error(
      `no prebuilt ${process.platform}-${process.arch} llama.cpp libraries beside node-llama-cpp`,
    );
  }
  const buildFolder = join(packageFolder, "native", "build");
  // The name carries the log flush (llama-completion-log-flush.cc) so a binary built without it is
  // never reused.
  const binary = join(buildFolder, `llama-completion-${nodeLlamaCpp.release}-log-flush`);
  if (existsSync(binary)) return { binary, libraries };
  const sources = extractLlamaCppSources(
    nodeLlamaCpp.bundle,
    ["include", "ggml/include", "common", "vendor", "tools/completion"],
    join(buildFolder, `llama.cpp-${nodeLlamaCpp.release}-completion-sources`),
  );
  // libllama-common, libllama(.vX), libggml(.vX), libggml-base; not the CPU variants ggml loads itself.
  const libraryNames = readdirSync(libraries).filter((name) =>
    /^lib(llama-common|llama|ggml|ggml-base)(\.v[\d.]+)?\.so$/.test(name),
  );
  // Built under a temporary name and renamed, so an interrupted build never leaves a broken binary.
  const temporary = `${binary}.${process.pid}.tmp`;
  execFileSync(
    process.env.CXX || "c++",
    [
      "-std=c++17",
      "-O1",
      ...["include", "ggml/include", "common", "vendor"].map((folder) => `-I${join(sources, folder)}`),
      join(sources, "tools/completion/completion.cpp"),
      join(sources, "tools/completion/main.cpp"),
      join(import.meta.dirname, "llama-completion-log-flush.cc"),
      "-o",
      temporary,
      `-L${libraries}`,
      ...libraryNames.map((name) => `-l:${name}`),
      `-Wl,-rpath,${libraries}`,
    ],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  renameSync(temporary, binary);
  return { binary, libraries };
}

export interface LlamaCompletionRun {
  readonly model: string;
  readonly promptFile: string;
  readonly groupSize: number;
  readonly neighborWindow: number;
  readonly contextSize: number;
  readonly batchSize: number;
  readonly predict: number;
}

/** Greedy llama-completion with --grp-attn-n/--grp-attn-w; returns the generated text only. */
export function runLlamaCompletion(run: LlamaCompletionRun): string {
  const { binary, libraries } = buildLlamaCompletion();
  // ggml finds its CPU backend libraries beside the executable or in the working folder.
  return execFileSync(
    binary,
    [
      ...["-m", run.model, "-f", run.promptFile, "-n", String(run.predict)],
      ...["-c", String(run.contextSize), "-b", String(run.batchSize), "-t", "1"],
      ...["--temp", "0", "-fa", "off", "-ctk", "f32", "-ctv", "f32"],
      ...["--grp-attn-n", String(run.groupSize), "--grp-attn-w", String(run.neighborWindow)],
      ...["-no-cnv", "--no-display-prompt", "--no-warmup"],
    ],
    { cwd: libraries, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 16 * 1024 * 1024 },
  );
}
