/**
 * llama2.c tokenizer files (tok512.bin, tokenizer.bin): an int32 max_token_length, then per token
 * {float32 score, int32 length, bytes}. The token count is not stored (run.c takes it from the
 * checkpoint), so records are read to the end of the file. llama2.c's exporter turned U+2581 back
 * into spaces and spelled BOS/EOS "\n<s>\n" / "\n</s>\n"; we undo both to get a SentencePiece
 * (`llama`) vocabulary as GGUF stores it.
 */
import { ggufTokenTypes } from "./gguf-types.js";
import { ModelFileError } from "./model-file-error.js";
import { spaceSymbol, type Vocabulary } from "./tokenizer.js";

const bytePiece = /^<0x[0-9A-F]{2}>$/;

export function parseLlama2cTokenizer(bytes: Uint8Array, path = "<llama2.c tokenizer>"): Vocabulary {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 4) throw new ModelFileError(path, "too short for a llama2.c tokenizer header");
  const maximumLength = view.getInt32(0, true);
  if (!(maximumLength > 0 && maximumLength < 1 << 16)) {
    throw new ModelFileError(
      path,
      `max_token_length ${maximumLength} is implausible; not a llama2.c tokenizer`,
    );
  }
  const decoder = new TextDecoder("utf-8");
  const raw: string[] = [];
  const scores: number[] = [];
  let at = 4;
  while (at < bytes.byteLength) {
    if (at + 8 > bytes.byteLength)
      throw new ModelFileError(path, `truncated inside the record of token ${raw.length}`);
    const score = view.getFloat32(at, true);
    const length = view.getInt32(at + 4, true);
    if (length < 0 || length > maximumLength + 8 || at + 8 + length > bytes.byteLength) {
      throw new ModelFileError(
        path,
        `token ${raw.length} has length ${length}, past max_token_length or the end of the file`,
      );
    }
    raw.push(decoder.decode(bytes.subarray(at + 8, at + 8 + length)));
    scores.push(score);
    at += 8 + length;
  }
  if (raw.length < 3)
    throw new ModelFileError(path, `holds ${raw.length} tokens; a llama vocabulary needs at least 3`);

  const tokens: string[] = [];
  const tokenTypes: number[] = [];
  raw.forEach((text, id) => {
    const trimmed = text.trim();
    if (id === 0) {
      tokens.push(text === "" ? "<unk>" : text);
      tokenTypes.push(ggufTokenTypes.unknown);
    } else if ((id === 1 && trimmed === "<s>") || (id === 2 && trimmed === "</s>")) {
      tokens.push(trimmed);
      tokenTypes.push(ggufTokenTypes.control);
    } else if (bytePiece.test(text)) {
      tokens.push(text);
      tokenTypes.push(ggufTokenTypes.byte);
    } else {
      tokens.push(text.replaceAll(" ", spaceSymbol));
      tokenTypes.push(ggufTokenTypes.normal);
    }
  });
  return {
    tokens,
    scores: Float32Array.from(scores),
    tokenTypes: Int32Array.from(tokenTypes),
    bosId: 1,
    eosId: 2,
    unknownId: 0,
    addBos: true,
    addEos: false,
  };
}
