"""Builds a tiny random-initialised Phi-3 with LongRoPE (Phi-3-mini-128k's RoPE) in transformers, as a Hugging Face folder.

The folder holds what llama.cpp's convert_hf_to_gguf.py reads for Phi-3: config.json,
model.safetensors, tokenizer.model (Phi-3's converter reads the SentencePiece file itself) and
added_tokens.json.
Nothing is downloaded: the config is written here and tok512.model is copied from ../shared/models.

Usage: python make_models.py --out /tmp/phi3-hf [--shared ../../../shared]
"""

import argparse
import json
import pathlib
import shutil

import torch
from transformers import Phi3Config, Phi3ForCausalLM

SEED = 41
# Phi-3-mini-128k: max_position_embeddings 131072 over original_max_position_embeddings 4096 (32x).
# Here 128 over 32 (4x): the converter's attention factor sqrt(1 + ln 4 / ln 32) = 1.1842 is far
# enough from 1 that a backend leaving it out fails the oracle test.
TRAINED_CONTEXT = 128
ORIGINAL_CONTEXT = 32
HEAD_SIZE = 16
VOCABULARY_SIZE = 520
# Phi-3's added tokens after tok512.model's 512 pieces, as Phi-3 numbers them after its 32000.
# llama.cpp needs <|endoftext|> in any vocabulary of a model named Phi-3 (llama-vocab.cpp sets its
# attributes by name), and <|end|> is Phi-3's end of turn.
ADDED_TOKENS = {"<|endoftext|>": 512, "<|assistant|>": 513, "<|system|>": 514, "<|end|>": 515, "<|user|>": 516}
# Wider than transformers' 0.02 so random logits are spread out and greedy decisions are far from ties.
INITIALIZER_RANGE = 0.15


def longrope_factors():
    """Per-pair divisors like Phi-3-mini-128k's: short ones near 1, long ones growing with the pair
    (its long factors run from 1.0 to about 50 over 48 pairs); rounded to float32 values."""
    generator = torch.Generator().manual_seed(SEED)
    pairs = HEAD_SIZE // 2
    short = 1.0 + 0.1 * torch.rand(pairs, generator=generator)
    long = torch.linspace(1.0, 12.0, pairs) * (1.0 + 0.2 * torch.rand(pairs, generator=generator))
    as_float32 = lambda values: [float(v) for v in values.to(torch.float32)]  # noqa: E731
    return as_float32(short), as_float32(long)


def make_config():
    short_factor, long_factor = longrope_factors()
    return Phi3Config(
        # Phi-3's layout: the SentencePiece vocabulary, then added tokens past it (32000 + 64 there).
        vocab_size=VOCABULARY_SIZE,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        # Phi-3-mini has as many key/value heads as query heads; Phi-3-small/medium share them (GQA).
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=TRAINED_CONTEXT,
        original_max_position_embeddings=ORIGINAL_CONTEXT,
        rope_theta=10000.0,
        rope_scaling={"type": "longrope", "short_factor": short_factor, "long_factor": long_factor},
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        initializer_range=INITIALIZER_RANGE,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        attention_dropout=0.0,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        sliding_window=None,
        torch_dtype="float32",
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=pathlib.Path)
    default_shared = pathlib.Path(__file__).resolve().parents[3] / "shared"
    parser.add_argument("--shared", type=pathlib.Path, default=default_shared)
    arguments = parser.parse_args()
    sentencepiece_path = arguments.shared / "models" / "tok512.model"
    if not sentencepiece_path.is_file():
        raise SystemExit(f"--shared {arguments.shared}: no models/tok512.model there")
    torch.manual_seed(SEED)
    model = Phi3ForCausalLM(make_config()).eval()
    # transformers initialises RMSNorm weights to 1; random ones make every norm matter.
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                parameter.uniform_(0.5, 1.5)
    folder = arguments.out / "phi3-longrope"
    model.save_pretrained(folder, safe_serialization=True)
    shutil.copyfile(sentencepiece_path, folder / "tokenizer.model")
    (folder / "added_tokens.json").write_text(json.dumps(ADDED_TOKENS, indent=2) + "\n")
    parameters = sum(p.numel() for p in model.parameters())
    print(f"phi3-longrope: {folder} ({parameters} parameters)")
    print(json.dumps({"seed": SEED, "trained_context": TRAINED_CONTEXT, "original_context": ORIGINAL_CONTEXT}))


if __name__ == "__main__":
    main()
