/**
 * Checks that the project's SentencePiece-style encoder (@self-extend/models) reproduces our
 * Python trainer's segmentation: every sample written by build_data.py (held-out stories, a
 * passkey prompt, edge cases) and, if given, a whole token file made by tokenize_eval.py.
 *
 *   npx tsx --conditions=source tools/demo-model/tokenizer-check.ts .train-data/tok1024.bin \
 *     .train-data/tokenizer-sample.json [text.txt tokens.u16]
 */
import { readFileSync } from "node:fs";
import { createTokenizer, readLlama2cTokenizer } from "@self-extend/models/node";
import { tokenizeAsOneDocument } from "@self-extend/reference";

const [tokenizerPath, samplePath, textPath, tokensPath] = process.argv.slice(2);
const tokenizer = createTokenizer(readLlama2cTokenizer(tokenizerPath));
const samples = JSON.parse(readFileSync(samplePath, "utf8")) as { text: string; ids: number[] }[];
let failures = 0;
let tokens = 0;
for (const { text, ids } of samples) {
  const ours = tokenizer.encode(text, { addBos: true });
  tokens += ids.length;
  if (ours.length !== ids.length || ours.some((id, index) => id !== ids[index])) {
    failures++;
    console.log(`MISMATCH on ${JSON.stringify(text.slice(0, 60))}...`);
  }
  if (tokenizer.decode(ours) !== text && !text.includes("\t")) {
    console.log(`round trip differs on ${JSON.stringify(text.slice(0, 60))}`);
  }
}
console.log(`${samples.length - failures}/${samples.length} samples (${tokens} tokens) identical`);
if (textPath && tokensPath) {
  const expected = new Uint16Array(readFileSync(tokensPath).buffer.slice(0));
  const ours = tokenizeAsOneDocument(readFileSync(textPath, "utf8"), tokenizer);
  const same = ours.length === expected.length && ours.every((id, index) => id === expected[index]);
  console.log(
    `whole document: ${ours.length} tokens (TS) vs ${expected.length} (Python): ${same ? "identical" : "DIFFERENT"}`,
  );
  if (!same) failures++;
}
process.exit(failures === 0 ? 0 : 1);
