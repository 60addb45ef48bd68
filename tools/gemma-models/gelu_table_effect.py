"""How far llama.cpp's fp16 GELU lookup table alone moves Gemma's logits.

ggml's CPU GeGLU (ggml/src/ggml-cpu/vec.h, GGML_GELU_FP16) computes gelu(x) for |x| < 10 as a table
entry: x rounded to fp16 indexes a table of fp16(gelu(x)). Here transformers' Gemma, in float64, has
its GELU replaced by exactly that rounding, and its logits over the oracle's G = 1 prompt (the
positions the oracle stores) are compared with the unmodified model's. Attention is transformers'
own: at G = 1 the oracle equals it.

Usage: python gelu_table_effect.py --models /tmp/gemma-hf --oracle ../../packages/reference/test/fixtures/gemma/gemma-oracle.json
"""

import argparse
import json
import pathlib

import torch
from transformers import AutoModelForCausalLM


def table_gelu(x):
    entry = torch.nn.functional.gelu(x.to(torch.float16).to(torch.float32), approximate="tanh").to(torch.float16)
    return torch.where(x <= -10, torch.zeros_like(x), torch.where(x >= 10, x, entry.to(x.dtype)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, type=pathlib.Path, help="output folder of make_models.py")
    parser.add_argument("--oracle", required=True, type=pathlib.Path, help="gemma-oracle.json")
    arguments = parser.parse_args()
    run = json.loads(arguments.oracle.read_text())["plain"]
    positions = [int(position) for position in run["logits"]]
    model = AutoModelForCausalLM.from_pretrained(arguments.models / "gemma", attn_implementation="sdpa").eval().double()
    with torch.no_grad():
        exact = model(torch.tensor([run["prompt_tokens"]])).logits[0, positions]
        for layer in model.model.layers:
            layer.mlp.act_fn.forward = table_gelu
        tabled = model(torch.tensor([run["prompt_tokens"]])).logits[0, positions]
    raw = float((exact - tabled).abs().max())
    log_probabilities = float((torch.log_softmax(exact, -1) - torch.log_softmax(tabled, -1)).abs().max())
    print(f"fp16 GELU table vs exact GELU at positions {positions}: logits {raw:.2e}, log-probabilities {log_probabilities:.2e}")


if __name__ == "__main__":
    main()
