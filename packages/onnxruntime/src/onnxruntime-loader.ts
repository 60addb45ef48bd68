/**
 * onnxruntime-node is a peer dependency loaded on first use: importing this package must not load
 * a native library (ESM packages here do no work at import time), and a machine without the
 * runtime still gets a clear error and a `checkAvailability()` that says why.
 */
import { OnnxRuntimeUnavailableError } from "./errors.js";

export type OnnxRuntime = typeof import("onnxruntime-node");

let loading: Promise<OnnxRuntime> | undefined;

export function loadOnnxRuntime(): Promise<OnnxRuntime> {
  loading ??= import("onnxruntime-node").then(
    (module) => ((module as { default?: OnnxRuntime }).default ?? module) as OnnxRuntime,
    (error: unknown) => {
      loading = undefined;
      throw new OnnxRuntimeUnavailableError(
        `onnxruntime-node could not be loaded (${error instanceof Error ? error.message : String(error)}); ` +
          "install it next to @self-extend/onnxruntime (see the package README: set ONNXRUNTIME_NODE_INSTALL=skip " +
          "when its install script cannot reach the network)",
        { cause: error },
      );
    },
  );
  return loading;
}
