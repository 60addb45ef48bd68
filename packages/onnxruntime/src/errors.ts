import { SelfExtendError } from "@self-extend/core";

/** The export cache folder cannot be created or written, or an export could not be stored there. */
export class ExportCacheError extends SelfExtendError {
  override readonly name = "ExportCacheError";
  constructor(
    readonly folder: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`export cache ${folder}: ${message}`, options);
  }
}

/** onnxruntime-node is missing or its native library does not load on this machine. */
export class OnnxRuntimeUnavailableError extends SelfExtendError {
  override readonly name = "OnnxRuntimeUnavailableError";
}
