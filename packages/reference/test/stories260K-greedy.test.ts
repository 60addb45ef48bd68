/**
 * stories260K from BOS, greedy, 256 tokens: llama2.c's `run stories260K.bin -z tok512.bin -t 0`
 * prints the text in fixtures/stories260K-greedy.txt (doc/stories260K.md of karpathy/llama2.c, model
 * output, MIT), followed by one newline of its own.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { generateTokens } from "@self-extend/core";
import { describe, expect, it } from "vitest";
import { createReferenceBackend } from "../src/index.js";
import { fixturesFolder, sharedModelPaths } from "./shared-data.js";

/**
 * Pieces of tok512.bin by id, as bytes: {float32 score, int32 length, bytes} records after an int32
 * header. Only what this check needs: byte tokens <0xNN> stand for one byte, BOS/EOS for nothing.
 */
function readPieces(path: string): Uint8Array[] {
  const bytes = readFileSync(path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pieces: Uint8Array[] = [];
  for (let offset = 4; offset < bytes.byteLength; ) {
    const length = view.getInt32(offset + 4, true);
    const piece = bytes.subarray(offset + 8, offset + 8 + length);
    const text = new TextDecoder().decode(piece);
    const byte = /^<0x([0-9A-F]{2})>$/.exec(text);
    pieces.push(byte === null ? piece : Uint8Array.of(Number.parseInt(byte[1], 16)));
    offset += 8 + length;
  }
  pieces[1] = new Uint8Array(0);
  pieces[2] = new Uint8Array(0);
  return pieces;
}

describe("stories260K", () => {
  it("greedy decoding from BOS reproduces the published 256-token sample", async () => {
    const model = await createReferenceBackend().loadModel({ path: sharedModelPaths.stories260K });
    for (const selfExtend of [
      { groupSize: 1, neighborWindow: 1 },
      // Every key is a neighbor when W >= N, so Self-Extend must change nothing here.
      { groupSize: 4, neighborWindow: 256 },
    ]) {
      const session = await model.createSession({ selfExtend, contextSize: 256 });
      const generated: number[] = [];
      for await (const token of generateTokens(session, [1], { maxTokens: 256 })) generated.push(token);
      expect(generated).toHaveLength(256);
      expect(session.tokenCount).toBe(256);

      const pieces = readPieces(sharedModelPaths.tokenizer);
      const bytes = Buffer.concat(generated.map((token) => pieces[token]));
      // As in run.c, the dummy space in front of the first piece after BOS is dropped.
      const text = bytes.toString("utf8").replace(/^ /, "");
      const published = readFileSync(join(fixturesFolder, "stories260K-greedy.txt"), "utf8");
      expect(Buffer.byteLength(published)).toBe(566);
      expect(`${text}\n`).toBe(published);
    }
  });
});
