"""Writes a vocabulary-only GGUF for a Hugging Face byte-level BPE tokenizer with llama.cpp's gguf-py.

Usage: write-bpe-vocabulary-gguf.py TOKENIZER_FOLDER OUTPUT.gguf PRE_TOKENIZER ARCHITECTURE

TOKENIZER_FOLDER holds tokenizer.json and tokenizer_config.json. The token list, token types and
the special-vocabulary handling follow the choices of llama.cpp's convert_hf_to_gguf.py for BPE
vocabularies (in the bundled release: conversion/base.py, get_vocab_base and
does_token_look_special; checked against it), written independently of our TypeScript writer so
that a misreading of the format on our side cannot hide in both: tokens by id, added tokens that are
special (or look special, `<|...|>`) become control tokens, other added tokens user-defined ones,
everything else normal, ids missing below the largest become [PADn] unused tokens (with no
config.json, the vocabulary size is the tokenizer's, as the converter falls back to); merges, BOS/EOS and add_bos come from gguf.SpecialVocab. llama.cpp refuses a
model without hyperparameters even when it only reads the vocabulary, so a tiny set is written.
"""

import json
import sys
from pathlib import Path

import gguf


def looks_special(token: str) -> bool:
    # convert_hf_to_gguf.py treats <|...|> style tokens (and a few names) as control tokens even when
    # tokenizer.json does not mark them special, e.g. Qwen's <|fim_prefix|>.
    return (
        (token.startswith("<|") and token.endswith("|>"))
        or (token.startswith("<\uff5c") and token.endswith("\uff5c>"))
        or token in ("<pad>", "<mask>", "<2mass>", "[@BOS@]")
    )


def main() -> None:
    folder, output, pre, architecture = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    tokenizer = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    model = tokenizer["model"]
    if model["type"] != "BPE":
        raise SystemExit(f"{folder}: tokenizer model {model['type']} is not BPE")
    by_id: dict[int, str] = {token_id: token for token, token_id in model["vocab"].items()}
    added: dict[int, dict] = {entry["id"]: entry for entry in tokenizer.get("added_tokens", [])}
    for token_id, entry in added.items():
        by_id[token_id] = entry["content"]
    size = max(by_id) + 1

    tokens: list[str] = []
    types: list[int] = []
    for token_id in range(size):
        token = by_id.get(token_id)
        if token is None:
            tokens.append(f"[PAD{token_id}]")
            types.append(gguf.TokenType.UNUSED)
        elif token_id in added:
            tokens.append(token)
            control = added[token_id]["special"] or looks_special(token)
            types.append(gguf.TokenType.CONTROL if control else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(token)
            types.append(gguf.TokenType.NORMAL)

    writer = gguf.GGUFWriter(output, architecture)
    writer.add_name(f"{folder.name} vocabulary")
    writer.add_context_length(8192)
    writer.add_embedding_length(64)
    writer.add_block_count(1)
    writer.add_feed_forward_length(128)
    writer.add_head_count(4)
    writer.add_head_count_kv(4)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(500000.0)
    writer.add_vocab_size(size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(folder, load_merges=True, n_vocab=size)
    if len(special.merges) == 0:
        raise SystemExit(f"{folder}: gguf.SpecialVocab found no merges")
    special.add_to_gguf(writer)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(json.dumps({"tokens": size, "merges": len(special.merges), "special": special.special_token_ids}))


main()
