/**
 * Times the reference backend on stories260K: a 2048-token prefill (logits for every position) and
 * the same tokens decoded one at a time, plain and with Self-Extend, best of a few runs.
 *
 *     node --conditions=source --import tsx packages/reference/scripts/measure-speed.ts [repeats]
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createTokenizer, readLlama2cTokenizer } from "@self-extend/models/node";
import { createReferenceBackend, tokenizeAsOneDocument } from "../src/index.js";

const models = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..", "shared", "models");
const repeats = Number(process.argv[2] ?? 3);
const tokenizer = createTokenizer(readLlama2cTokenizer(join(models, "tok512.bin")));
const text = readFileSync(join(models, "tinystories_val_256k.txt"), "utf8");
const tokens = tokenizeAsOneDocument(text, tokenizer).slice(0, 2048);
const model = await createReferenceBackend().loadModel({ path: join(models, "stories260K.bin") });

const configs = [
  ["plain", { groupSize: 1, neighborWindow: 1 }],
  ["Self-Extend G=8 W=256", { groupSize: 8, neighborWindow: 256 }],
] as const;
for (const length of [512, 2048]) {
  for (const [label, selfExtend] of configs) {
    const session = await model.createSession({ selfExtend, contextSize: length });
    let prefill = Number.POSITIVE_INFINITY;
    let decode = Number.POSITIVE_INFINITY;
    for (let run = 0; run < repeats; run++) {
      await session.reset();
      let started = performance.now();
      await session.evaluate(tokens.slice(0, length), { logits: "all" });
      prefill = Math.min(prefill, performance.now() - started);
      await session.reset();
      started = performance.now();
      for (let index = 0; index < length; index++) await session.decode(tokens[index]);
      decode = Math.min(decode, performance.now() - started);
    }
    console.log(
      `${length} tokens, ${label}: prefill ${(prefill / 1000).toFixed(2)} s (${((length / prefill) * 1000).toFixed(0)} tokens/s), ` +
        `decode ${(decode / 1000).toFixed(2)} s (${((length / decode) * 1000).toFixed(0)} tokens/s)`,
    );
  }
}
