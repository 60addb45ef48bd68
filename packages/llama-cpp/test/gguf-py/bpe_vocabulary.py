"""A Hugging Face byte-level BPE tokenizer as GGUF vocabulary keys, written with llama.cpp's gguf-py.

The token list, token types and the special-vocabulary handling follow the choices of llama.cpp's
convert_hf_to_gguf.py for BPE vocabularies (in the bundled release: conversion/base.py,
get_vocab_base and does_token_look_special; checked against it), written independently of our
TypeScript writer so that a misreading of the format on our side cannot hide in both: tokens by id,
added tokens that are special (or look special, `<|...|>`) become control tokens, other added tokens
user-defined ones, everything else normal, ids missing below the largest become [PADn] unused
tokens (with no config.json, the vocabulary size is the tokenizer's, as the converter falls back
to); merges, BOS/EOS and add_bos come from gguf.SpecialVocab.
"""

import json
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


def read_bpe_vocabulary(folder: Path) -> tuple[list[str], list[int]]:
    """The tokens by id and their gguf token types, from TOKENIZER_FOLDER/tokenizer.json."""
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
    return tokens, types


def add_bpe_vocabulary(writer: gguf.GGUFWriter, folder: Path, pre: str) -> dict:
    """Adds the tokenizer keys of FOLDER's tokenizer.json (pre-tokenizer PRE) to WRITER; returns a summary."""
    tokens, types = read_bpe_vocabulary(folder)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(folder, load_merges=True, n_vocab=len(tokens))
    if len(special.merges) == 0:
        raise SystemExit(f"{folder}: gguf.SpecialVocab found no merges")
    special.add_to_gguf(writer)
    return {"tokens": len(tokens), "merges": len(special.merges), "special": special.special_token_ids}
