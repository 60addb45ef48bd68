"""Writes a vocabulary-only SentencePiece (`llama`) GGUF for a Hugging Face tokenizer.json that was
converted from a SentencePiece BPE model (Gemma's), with llama.cpp's gguf-py.

Usage: write-spm-vocabulary-gguf.py TOKENIZER_FOLDER OUTPUT.gguf ARCHITECTURE

Released Gemma GGUFs come from tokenizer.model through convert_hf_to_gguf.py
(conversion/base.py, _create_vocab_sentencepiece); the registry packages ship only tokenizer.json.
Token types follow that converter: <unk> unknown, <0xNN> byte, added tokens control when special
(or when they look special) and user-defined otherwise, with U+2581 in user-defined tokens turned
back into spaces; everything else normal. tokenizer.json has merges where tokenizer.model has
scores, and a SentencePiece BPE merge is the pair whose merged piece scores highest, so each piece
made by a merge scores minus the rank of its first merge (Hugging Face's converter wrote the merges
in the order of those scores). Gemma's converter writes add_space_prefix = false.
"""

import json
import sys
from pathlib import Path

import gguf

sys.path.insert(0, str(Path(__file__).parent / "gguf-py"))
from bpe_vocabulary import looks_special  # noqa: E402
from vocabulary_only import add_placeholder_hyperparameters  # noqa: E402


def main() -> None:
    folder, output, architecture = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    tokenizer = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    model = tokenizer["model"]
    if model["type"] != "BPE" or not model.get("byte_fallback"):
        raise SystemExit(f"{folder}: not a SentencePiece BPE tokenizer.json (model {model['type']})")
    by_id = {token_id: token for token, token_id in model["vocab"].items()}
    added = {entry["id"]: entry for entry in tokenizer.get("added_tokens", [])}
    size = max(max(by_id), max(added, default=0)) + 1
    rank_of = {}
    for rank, merge in enumerate(model["merges"]):
        left, right = merge if isinstance(merge, list) else merge.split(" ", 1)
        rank_of.setdefault(left + right, rank)

    tokens, scores, types = [], [], []
    for token_id in range(size):
        token = added[token_id]["content"] if token_id in added else by_id.get(token_id)
        if token is None:
            tokens.append(f"[PAD{token_id}]")
            scores.append(-10000.0)
            types.append(gguf.TokenType.UNUSED)
            continue
        score = -float(rank_of[token]) if token in rank_of else 0.0
        if token == model.get("unk_token"):
            kind = gguf.TokenType.UNKNOWN
        elif token_id in added:
            if added[token_id]["special"] or looks_special(token):
                kind = gguf.TokenType.CONTROL
            else:
                kind = gguf.TokenType.USER_DEFINED
                token = token.replace("\u2581", " ")
        elif len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
            kind = gguf.TokenType.BYTE
        else:
            kind = gguf.TokenType.NORMAL
        tokens.append(token)
        scores.append(score)
        types.append(kind)

    writer = gguf.GGUFWriter(output, architecture)
    writer.add_name(f"{folder.parent.name} vocabulary")
    add_placeholder_hyperparameters(writer)
    # Gemma's head size is read from these keys.
    writer.add_key_length(16)
    writer.add_value_length(16)
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    ids = {token: token_id for token_id, token in enumerate(tokens)}
    for name, setter in (("bos_token", writer.add_bos_token_id), ("eos_token", writer.add_eos_token_id),
                         ("unk_token", writer.add_unk_token_id), ("pad_token", writer.add_pad_token_id)):
        value = config.get(name)
        content = value["content"] if isinstance(value, dict) else value
        if content in ids:
            setter(ids[content])
    writer.add_add_bos_token(bool(config.get("add_bos_token", True)))
    writer.add_add_eos_token(bool(config.get("add_eos_token", False)))
    writer.add_add_space_prefix(False)
    writer.add_vocab_size(len(tokens))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(json.dumps({"tokens": len(tokens), "merges": len(model["merges"]),
                      "control": types.count(gguf.TokenType.CONTROL),
                      "userDefined": types.count(gguf.TokenType.USER_DEFINED)}))


main()
