/**
 * Pieces every session implementation needs, kept here so the reference, ONNX Runtime and WebGPU
 * sessions check lengths and gather logits the same way.
 */
import type { EvaluationV1, LogitSelection } from "./backend-contract.js";
import { resolveLogitSelection } from "./backend-contract.js";
import type { SelfExtendConfig } from "./config.js";
import { ContextLengthError } from "./errors.js";
import { assertWithinUsableContext } from "./position-map.js";

export interface SessionLengthCheck {
  /** Tokens the session would hold after the evaluation. */
  readonly total: number;
  /** Tokens it holds now (for the message). */
  readonly held: number;
  readonly contextSize: number;
  readonly trainedContext: number;
  readonly config: SelfExtendConfig;
  /** Let Self-Extend pass (L - W) * G + W (reference-only experiments). */
  readonly allowBeyondUsableContext?: boolean;
}

/**
 * Refuses, before any work, a sequence longer than the session's capacity or (with G > 1) than
 * (L - W) * G + W. Plain attention (G = 1) may run past L: baselines compare it there.
 */
export function assertSessionLength(check: SessionLengthCheck): void {
  const { total, held, contextSize, trainedContext, config } = check;
  if (total > contextSize) {
    throw new ContextLengthError(
      total,
      contextSize,
      `the session was created with contextSize = ${contextSize} and holds ${held} tokens`,
    );
  }
  if (config.groupSize > 1 && check.allowBeyondUsableContext !== true) {
    assertWithinUsableContext(total, trainedContext, config);
  }
}

/**
 * Gathers the logits an evaluation was asked for while it runs block by block. An explicit
 * selection may repeat or reorder rows, so each block row maps to every result slot that wants it.
 */
export class LogitCollector {
  readonly positions: Int32Array;
  readonly logits: Float32Array;
  private readonly slotsByRow = new Map<number, number[]>();

  constructor(
    selection: LogitSelection | undefined,
    count: number,
    firstPosition: number,
    readonly vocabularySize: number,
  ) {
    const rows = resolveLogitSelection(selection, count);
    this.positions = Int32Array.from(rows, (row) => firstPosition + row);
    this.logits = new Float32Array(rows.length * vocabularySize);
    rows.forEach((row, slot) => {
      const slots = this.slotsByRow.get(row);
      if (slots === undefined) this.slotsByRow.set(row, [slot]);
      else slots.push(slot);
    });
  }

  /** Rows of the block (relative to blockStart) whose logits are wanted, ascending. */
  rowsOfBlock(blockStart: number, blockCount: number): number[] {
    const rows: number[] = [];
    for (let row = 0; row < blockCount; row++) if (this.slotsByRow.has(blockStart + row)) rows.push(row);
    return rows;
  }

  /** Stores a block's logits: `blockLogits` holds one row per entry of `rows`, in that order. */
  store(blockStart: number, rows: readonly number[], blockLogits: Float32Array): void {
    const size = this.vocabularySize;
    rows.forEach((row, index) => {
      for (const slot of this.slotsByRow.get(blockStart + row) ?? []) {
        this.logits.set(blockLogits.subarray(index * size, (index + 1) * size), slot * size);
      }
    });
  }

  result(): EvaluationV1 {
    return { positions: this.positions, logits: this.logits, vocabularySize: this.vocabularySize };
  }
}

/** Refuses a token id outside 0 .. vocabularySize - 1, naming it and its index, before any work. */
export function assertTokensInVocabulary(tokens: ArrayLike<number>, vocabularySize: number): void {
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index];
    if (!Number.isInteger(token) || token < 0 || token >= vocabularySize) {
      throw new RangeError(
        `token id ${token} at index ${index} is outside the vocabulary (ids 0 .. ${vocabularySize - 1})`,
      );
    }
  }
}
