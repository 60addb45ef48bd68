"""Builds tiny random-initialised Gemma, Gemma 2 and Gemma 3 models in transformers, as Hugging Face folders.

Each folder holds what llama.cpp's convert_hf_to_gguf.py reads for these architectures: config.json,
model.safetensors, and tokenizer.model (Gemma's converter reads the SentencePiece file itself).
Nothing is downloaded: the configs are written here and tok512.model is copied from ../shared/models.

Usage: python make_models.py --out /tmp/gemma-hf [--shared ../../../shared]
"""

import argparse
import json
import pathlib
import shutil

import torch
from transformers import (
    Gemma2Config,
    Gemma2ForCausalLM,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GemmaConfig,
    GemmaForCausalLM,
)

FAMILIES = ("gemma", "gemma2", "gemma3")
# One seed per family, so rebuilding one family gives the same weights as building both.
SEEDS = {"gemma": 31, "gemma2": 32, "gemma3": 33}
TRAINED_CONTEXT = 128
VOCABULARY_SIZE = 512
# Gemma 2's local layers see the last 48 tokens. Above the oracle's neighbor window (32) on purpose:
# with a window of at most W a local layer sees only neighbor-level distances, and Self-Extend on a
# local layer could not be told apart from the exact positions it must keep there.
SLIDING_WINDOW = 48
# Wider than transformers' 0.02 so random logits are spread out and greedy decisions are far from ties.
INITIALIZER_RANGE = 0.15

COMMON = dict(
    vocab_size=VOCABULARY_SIZE,
    hidden_size=64,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=128,
    max_position_embeddings=TRAINED_CONTEXT,
    rope_theta=10000.0,
    rms_norm_eps=1e-6,
    # Gemma ties the LM head to the embeddings, and llama.cpp reads only token_embd for both.
    tie_word_embeddings=True,
    initializer_range=INITIALIZER_RANGE,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
    attention_bias=False,
    attention_dropout=0.0,
    torch_dtype="float32",
)


def make_config(family):
    if family == "gemma":
        # Gemma 7B-style: heads x head_dim (4 x 32 = 128) is wider than the model (64).
        return GemmaConfig(**COMMON, head_dim=32, hidden_act="gelu_pytorch_tanh")
    if family == "gemma2":
        return Gemma2Config(
            **COMMON,
            head_dim=16,
            hidden_activation="gelu_pytorch_tanh",
            # llama.cpp's converter does not write query_pre_attn_scalar: llama.cpp scales scores by
            # 1/sqrt(head_dim) (the 27B's n_embd/n_head rule aside), so the two agree only when it is head_dim.
            query_pre_attn_scalar=16,
            sliding_window=SLIDING_WINDOW,
            # Smaller than Gemma 2's 50 and 30, so both caps bend scores and logits of this size.
            attn_logit_softcapping=10.0,
            final_logit_softcapping=15.0,
        )
    if family == "gemma3":
        common = {key: value for key, value in COMMON.items() if key not in ("num_hidden_layers", "rope_theta")}
        return Gemma3TextConfig(
            **common,
            # Gemma 3's layer pattern is 5 local : 1 global (transformers' default layer_types, and
            # llama.cpp's default pattern 6, which its converter relies on: it writes no pattern key),
            # so six layers hold one global layer (layer 5).
            num_hidden_layers=6,
            head_dim=16,
            hidden_activation="gelu_pytorch_tanh",
            query_pre_attn_scalar=16,
            sliding_window=SLIDING_WINDOW,
            # Gemma 3's two RoPE bases: 1e6 on global layers, 10000 on local ones.
            rope_theta=1_000_000.0,
            rope_local_base_freq=10_000.0,
            # Gemma 3 4B-27B scale global positions linearly (factor 8); a factor here makes the test cover it.
            rope_scaling={"rope_type": "linear", "factor": 2.0},
            attn_logit_softcapping=None,
            final_logit_softcapping=None,
        )
    raise ValueError(f"unknown family {family!r}: expected one of {', '.join(FAMILIES)}")


MODEL_CLASSES = {"gemma": GemmaForCausalLM, "gemma2": Gemma2ForCausalLM, "gemma3": Gemma3ForCausalLM}


def build(family, out_dir, sentencepiece_path):
    torch.manual_seed(SEEDS[family])
    config = make_config(family)
    model = MODEL_CLASSES[family](config).eval()
    # Gemma's RMSNorm multiplies by (1 + weight) and transformers initialises the weight to 0;
    # random weights in [-0.5, 0.5] make every norm (and the converter's +1) matter.
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                parameter.uniform_(-0.5, 0.5)
    folder = out_dir / family
    model.save_pretrained(folder, safe_serialization=True)
    shutil.copyfile(sentencepiece_path, folder / "tokenizer.model")
    return folder, model


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
    for family in families:
        folder, model = build(family, arguments.out, sentencepiece_path)
        parameters = sum(p.numel() for p in model.parameters())
        layer_types = getattr(model.config, "layer_types", None)
        print(f"{family}: {folder} ({parameters} parameters, layer types {layer_types})")
    print(json.dumps({"seeds": SEEDS, "initializer_range": INITIALIZER_RANGE, "trained_context": TRAINED_CONTEXT}))


if __name__ == "__main__":
    main()
