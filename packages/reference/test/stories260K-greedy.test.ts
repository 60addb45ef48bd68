/**
 * stories260K from BOS, greedy, 256 tokens: llama2.c's `run stories260K.bin -z tok512.bin -t 0`
 * prints the text in fixtures/stories260K-greedy.txt (doc/stories260K.md of karpathy/llama2.c, model
 * output, MIT), followed by one newline of its own.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { generateTokens } from "@self-extend/core";
import { createTokenizer, readLlama2cTokenizer } from "@self-extend/models/node";
import { describe, expect, it } from "vitest";
import { createReferenceBackend } from "../src/index.js";
import { fixturesFolder, sharedModelPaths } from "./shared-data.js";

describe("stories260K", () => {
  it("greedy decoding from BOS reproduces the published 256-token sample", async () => {
    const model = await createReferenceBackend().loadModel({ path: sharedModelPaths.stories260K });
    const tokenizer = createTokenizer(readLlama2cTokenizer(sharedModelPaths.tokenizer));
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

      // Like run.c, decode drops the dummy space in front of the first piece.
      const text = tokenizer.decode(generated);
      const published = readFileSync(join(fixturesFolder, "stories260K-greedy.txt"), "utf8");
      expect(Buffer.byteLength(published)).toBe(566);
      expect(`${text}\n`).toBe(published);
    }
  });
});
