/**
 * Every error names the offending value and the rule it broke, so a user can fix the input
 * without reading our source. Adapters throw these (or subclasses) instead of letting a runtime
 * fail deep inside native code.
 */
export class SelfExtendError extends Error {
  override readonly name: string = "SelfExtendError";
}

/** A configuration value broke a rule of the spec (for example W % G != 0). */
export class SelfExtendConfigError extends SelfExtendError {
  override readonly name: string = "SelfExtendConfigError";
  constructor(
    /** The field at fault, as spelled in the API (`groupSize`, `neighborWindow`, ...). */
    readonly field: string,
    /** The value that was given. */
    readonly value: unknown,
    /** The rule it broke, in words. */
    readonly rule: string,
  ) {
    super(`${field} = ${formatValue(value)} is invalid: ${rule}`);
  }
}

/** A sequence is longer than the model can take with the given settings. */
export class ContextLengthError extends SelfExtendError {
  override readonly name = "ContextLengthError";
  constructor(
    readonly length: number,
    readonly largestUsableContext: number,
    readonly rule: string,
  ) {
    super(`a sequence of ${length} tokens is too long: ${rule}`);
  }
}

/** A token id is not in the model's vocabulary (ids 0 .. vocabularySize - 1). */
export class TokenOutsideVocabularyError extends SelfExtendError {
  override readonly name = "TokenOutsideVocabularyError";
  constructor(
    readonly token: unknown,
    /** Where the token sits in the block that was given. */
    readonly index: number,
    readonly vocabularySize: number,
  ) {
    super(
      `token id ${typeof token === "number" ? String(token) : formatValue(token)} at index ${index} is outside the vocabulary (ids 0 .. ${vocabularySize - 1})`,
    );
  }
}

/** A session (or a model) was used after dispose(), or was disposed while an evaluation ran. */
export class SessionDisposedError extends SelfExtendError {
  override readonly name = "SessionDisposedError";
  constructor(
    /** What was disposed: "session" (the default) or "model". */
    readonly disposed: "session" | "model" = "session",
  ) {
    super(`the ${disposed} was disposed: ${disposed === "model" ? "load" : "create"} a new one`);
  }
}

/** A session was asked to evaluate or reset while an evaluation of its own was still running. */
export class SessionBusyError extends SelfExtendError {
  override readonly name = "SessionBusyError";
  constructor() {
    super("the session is busy: await the previous evaluate or decode first");
  }
}

/** The planner found no (G, W) that reaches the target context. */
export class PlanningError extends SelfExtendError {
  override readonly name = "PlanningError";
}

export function formatValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (value === undefined) return "undefined";
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
