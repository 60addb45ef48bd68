"""Builds the tiny random-initialised Hugging Face models that the exporters take as input.

Three families (Llama with grouped-query attention, Qwen2 with q/k/v bias, Phi-3 with fused
qkv_proj and gate_up_proj), each saved as an ordinary Hugging Face folder (safetensors, config,
generation config, tokenizer) so that every exporter sees what a user would hand it.
Nothing is downloaded: the configs are written here and the tokenizer is converted from the
SentencePiece model in ../shared/models by transformers' own converter.

Usage: python make_models.py --out /tmp/self-extend-hf [--shared ../../../shared]
"""

import argparse
import json
import pathlib

import torch
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    LlamaTokenizerFast,
    Phi3Config,
    Phi3ForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

FAMILIES = ("llama", "qwen2", "phi3")
# One seed per family, so rebuilding one family gives the same weights as building all three.
# Qwen2's first seed in line (19) gave a greedy top-1/top-2 gap of 3.7e-4 at step 2 of the oracle's
# 128 tokens; 23 was the first of 21..24 whose smallest gap (in a float32 screening run) was above 0.004.
SEEDS = {"llama": 18, "qwen2": 23, "phi3": 20}
TRAINED_CONTEXT = 128
VOCABULARY_SIZE = 512
# A wide initializer keeps random logits spread out, so greedy decisions are far from ties
# (the oracle reports the smallest top-1/top-2 gap it saw).
INITIALIZER_RANGE = 0.15

COMMON = dict(
    vocab_size=VOCABULARY_SIZE,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=TRAINED_CONTEXT,
    rope_theta=10000.0,
    rms_norm_eps=1e-5,
    tie_word_embeddings=False,
    initializer_range=INITIALIZER_RANGE,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=None,
    torch_dtype="float32",
)


def make_config(family):
    if family == "llama":
        return LlamaConfig(**COMMON, head_dim=16, intermediate_size=172, attention_bias=False, mlp_bias=False)
    if family == "qwen2":
        # Qwen2 always has q/k/v bias; its sliding window is off unless use_sliding_window is set.
        return Qwen2Config(**COMMON, intermediate_size=128, use_sliding_window=False, sliding_window=None, max_window_layers=2)
    if family == "phi3":
        # Phi-3's default sliding window (2047) would never bind at these lengths either; None states it.
        return Phi3Config(
            **COMMON,
            intermediate_size=128,
            original_max_position_embeddings=TRAINED_CONTEXT,
            sliding_window=None,
            rope_scaling=None,
            partial_rotary_factor=1.0,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attention_dropout=0.0,
        )
    raise ValueError(f"unknown family {family!r}: expected one of {', '.join(FAMILIES)}")


MODEL_CLASSES = {"llama": LlamaForCausalLM, "qwen2": Qwen2ForCausalLM, "phi3": Phi3ForCausalLM}


def make_tokenizer(sentencepiece_path):
    tokenizer = LlamaTokenizerFast(vocab_file=str(sentencepiece_path), add_bos_token=True, add_eos_token=False, legacy=False)
    if len(tokenizer) != VOCABULARY_SIZE:
        raise SystemExit(f"tokenizer {sentencepiece_path} has {len(tokenizer)} tokens: expected {VOCABULARY_SIZE}")
    return tokenizer


def build(family, out_dir, tokenizer):
    torch.manual_seed(SEEDS[family])
    config = make_config(family)
    model = MODEL_CLASSES[family](config).eval()
    # transformers initialises biases to zero; small random biases make Qwen2's q/k/v bias matter.
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(".bias"):
                parameter.normal_(0.0, INITIALIZER_RANGE)
            if "norm" in name and name.endswith("weight"):
                parameter.uniform_(0.5, 1.5)
    folder = out_dir / family
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    # The SentencePiece file is the tokenizer's source, not an output: exporters get tokenizer.json.
    (folder / "tokenizer.model").unlink(missing_ok=True)
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=pathlib.Path)
    default_shared = pathlib.Path(__file__).resolve().parents[3] / "shared"
    parser.add_argument("--shared", type=pathlib.Path, default=default_shared)
    parser.add_argument("--families", default=",".join(FAMILIES))
    arguments = parser.parse_args()
    sentencepiece_path = arguments.shared / "models" / "tok512.model"
    if not sentencepiece_path.is_file():
        raise SystemExit(f"--shared {arguments.shared}: no models/tok512.model there")
    families = arguments.families.split(",")
    for family in families:
        if family not in FAMILIES:
            raise SystemExit(f"--families {family}: expected some of {', '.join(FAMILIES)}")
    tokenizer = make_tokenizer(sentencepiece_path)
    for family in families:
        folder = build(family, arguments.out, tokenizer)
        parameters = sum(p.numel() for p in MODEL_CLASSES[family].from_pretrained(folder).parameters())
        print(f"{family}: {folder} ({parameters} parameters)")
    print(json.dumps({"seeds": SEEDS, "initializer_range": INITIALIZER_RANGE, "trained_context": TRAINED_CONTEXT}))


if __name__ == "__main__":
    main()
