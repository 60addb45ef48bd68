import { SelfExtendError } from "@self-extend/core";
import { quoteForMessage } from "./message-text.js";

/** A model or tokenizer file that cannot be read: truncated, corrupt, or of a kind we do not support. */
export class ModelFileError extends SelfExtendError {
  override readonly name: string = "ModelFileError";
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
  }
}

/** The file holds a model whose architecture no backend here can run. */
export class UnsupportedArchitectureError extends ModelFileError {
  override readonly name = "UnsupportedArchitectureError";
  constructor(
    path: string,
    readonly architecture: string,
    supported: readonly string[],
    /** Why, where we know (ALiBi, M-RoPE, tensors not read yet, ...). */
    reason?: string,
  ) {
    super(
      path,
      `architecture ${quoteForMessage(architecture)} is not supported${reason === undefined ? "" : `: ${reason}`} (supported: ${supported.join(", ")})`,
    );
  }
}
