/**
 * llama.cpp's own gguf-py (the Python package its converters write GGUF files with), read out of
 * the release node-llama-cpp bundles, for tests and tools that need GGUF files written by
 * llama.cpp's tools rather than by our writer: a file we wrote ourselves cannot catch our own
 * misreading of the format. It runs on Debian's python3 with Debian's numpy and PyYAML (installed
 * by scripts/install-ci-dependencies.sh), so nothing comes from PyPI and nothing from the network.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { extractLlamaCppSources, firstLine, locateNodeLlamaCpp } from "./llama-cpp-sources.mjs";

const packageFolder = join(import.meta.dirname, "..");

/** Debian's interpreter, whose numpy and PyYAML come from Debian's packages (not a pyenv or venv one). */
export const ggufPythonInterpreter = process.env.SELF_EXTEND_GGUF_PYTHON ?? "/usr/bin/python3";

/**
 * The folder holding the `gguf` Python package of the bundled llama.cpp release (extracted once
 * under native/), after checking that the interpreter can import it.
 */
export function ggufPythonPath() {
  const nodeLlamaCpp = locateNodeLlamaCpp(packageFolder);
  const sources = extractLlamaCppSources(
    nodeLlamaCpp.bundle,
    ["gguf-py"],
    join(packageFolder, "native", `gguf-py-${nodeLlamaCpp.release}`),
  );
  const pythonPath = join(sources, "gguf-py");
  try {
    execFileSync(ggufPythonInterpreter, ["-c", "import gguf, numpy, yaml"], {
      env: { ...process.env, PYTHONPATH: pythonPath },
      stdio: "pipe",
    });
  } catch (error) {
    throw new Error(
      `llama.cpp's gguf-py cannot run on ${ggufPythonInterpreter} (it needs Debian's python3-numpy and python3-yaml; run packages/llama-cpp/scripts/install-ci-dependencies.sh): ${firstLine(String(error.stderr ?? error.message))}`,
    );
  }
  return pythonPath;
}

/**
 * Runs a Python script with llama.cpp's gguf-py importable (`import gguf`), returning its stdout.
 * `script` is a path; `args` are passed to it.
 */
export function runGgufPython(script, args = [], options = {}) {
  const pythonPath = ggufPythonPath();
  return execFileSync(ggufPythonInterpreter, [script, ...args], {
    env: { ...process.env, PYTHONPATH: pythonPath },
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
    ...options,
  });
}
