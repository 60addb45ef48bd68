/**
 * Whether a path names a user's ONNX decoder export rather than a GGUF or llama2.c file: a `.onnx`
 * file, or a folder with `model.onnx` or transformers.js's `onnx/model.onnx`. One definition for
 * the command line, the conformance app and the ONNX Runtime adapter, which route such paths to the
 * adapter's graph rewriter.
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";

export function isOnnxExportPath(path: string): boolean {
  if (path.endsWith(".onnx")) return true;
  try {
    return (
      statSync(path).isDirectory() &&
      (existsSync(join(path, "model.onnx")) || existsSync(join(path, "onnx", "model.onnx")))
    );
  } catch {
    return false;
  }
}
