import { readFileSync } from "node:fs";
import { readLlama2cCheckpoint } from "@self-extend/models";
import { createTokenizer } from "../models/src/tokenizer.ts";
import { readLlama2cTokenizer } from "../models/src/llama2c-tokenizer.ts";
import { createReferenceModel } from "./src/index.ts";
const [N, G, W, layout, limit] = process.argv.slice(2).map((v, i) => (i === 3 ? v : Number(v)));
const text = readFileSync("/work/shared/models/tinystories_val_256k.txt", "utf8");
const tokenizer = createTokenizer(readLlama2cTokenizer("/work/shared/models/tok512.bin"));
const doc = layout === "raw" ? text : text.split("\n\n").map((b) => b.trim()).filter((b) => b.length > 0).join("\n");
let t = performance.now();
const all = tokenizer.encode(doc, { addBos: true });
console.log("encoded", all.length, "tokens in", (performance.now() - t).toFixed(0), "ms", all.slice(0, 12));
const total = Math.min(65536, Number(limit) || 65536);
const model = createReferenceModel(readLlama2cCheckpoint("/work/shared/models/stories260K.bin"));
const session = await model.createSession({ selfExtend: { groupSize: G as number, neighborWindow: W as number }, contextSize: N as number, allowBeyondUsableContext: true });
let nllIn = 0, countIn = 0, nllEdge = 0, countEdge = 0; let farIn = 0, farInCount = 0, farQ = 0, farQCount = 0;
t = performance.now();
for (let start = 0; start + (N as number) <= total; start += N as number) {
  await session.reset();
  const window = all.slice(start, start + (N as number));
  const { logits } = await session.evaluate(window, { logits: "all" });
  for (let p = 0; p < (N as number); p++) {
    const target = p + 1 < (N as number) ? window[p + 1] : all[start + p + 1];
    let m = -Infinity; for (let v = 0; v < 512; v++) m = Math.max(m, logits[p * 512 + v]);
    let s = 0; for (let v = 0; v < 512; v++) s += Math.exp(logits[p * 512 + v] - m);
    const nll = Math.log(s) + m - logits[p * 512 + target];
    if (p + 1 < (N as number)) { nllIn += nll; countIn++; if (p + 1 >= 1024) { farIn += nll; farInCount++; } } else { nllEdge += nll; countEdge++; }
    if (p >= 1024) { farQ += nll; farQCount++; }
  }
}
console.log(`N=${N} G=${G} W=${W} ${layout}: ${((performance.now() - t) / 1000).toFixed(1)} s`);
console.log("within-window PPL", Math.exp(nllIn / countIn).toFixed(4), countIn, "| with boundary targets", Math.exp((nllIn + nllEdge) / (countIn + countEdge)).toFixed(4), countIn + countEdge);
if (farInCount) console.log("far (targets 1024..2047)", Math.exp(farIn / farInCount).toFixed(4), "| far (queries 1024..2047, boundary)", Math.exp(farQ / farQCount).toFixed(4));
