"""Checks that llama.cpp's converter wrote what our GGUF reader expects, against the transformers folders.

For each family: prints every non-vocabulary metadata key, then checks that every norm weight is
transformers' weight + 1 (bit for bit, in float32), that the other tensors are transformers' own,
that the LM head is tied (no output.weight; no lm_head in the safetensors), and for Gemma 2 that the
soft-caps and sliding window are those of config.json and that no layer pattern key was written
(llama.cpp then assumes pattern 2: even layers local, as transformers' layer_types say); for Gemma 3
that the q/k norms are transformers' + 1 too, the window, both RoPE bases and the linear scaling are
config.json's, and that transformers' layer_types are llama.cpp's default pattern 6 (no key written).

Usage: PYTHONPATH=<llama.cpp>/gguf-py python check_conversion.py --models /tmp/gemma-hf --gguf ../../packages/reference/test/fixtures/gemma
"""

import argparse
import json
import pathlib

import numpy
import torch
from gguf import GGUFReader
from safetensors.torch import load_file

FAMILIES = ("gemma", "gemma2", "gemma3")
VOCABULARY_ARRAYS = ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type")
# Hugging Face name -> GGUF name, per layer.
LAYER_TENSORS = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
# Gemma 2 names its norms differently: its post_attention_layernorm is a post-norm.
GEMMA2_LAYER_TENSORS = {
    **LAYER_TENSORS,
    "post_attention_layernorm.weight": "post_attention_norm.weight",
    "pre_feedforward_layernorm.weight": "ffn_norm.weight",
    "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
}
GEMMA3_LAYER_TENSORS = {
    **GEMMA2_LAYER_TENSORS,
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
}


def check(family, models_root, gguf_root):
    config = json.loads((models_root / family / "config.json").read_text())
    reader = GGUFReader(gguf_root / f"{family}.gguf")
    metadata = {key: field.contents() for key, field in reader.fields.items() if key not in VOCABULARY_ARRAYS}
    for key, value in metadata.items():
        print(f"{family}: {key} = {value}")
    tensors = {tensor.name: numpy.array(tensor.data) for tensor in reader.tensors}
    hugging_face = load_file(models_root / family / "model.safetensors")
    pairs = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    for layer in range(config["num_hidden_layers"]):
        layer_tensors = {"gemma2": GEMMA2_LAYER_TENSORS, "gemma3": GEMMA3_LAYER_TENSORS}.get(family, LAYER_TENSORS)
        for source, target in layer_tensors.items():
            pairs[f"model.layers.{layer}.{source}"] = f"blk.{layer}.{target}"
    problems = []
    for source, target in pairs.items():
        expected = hugging_face[source]
        if source.endswith("norm.weight"):
            expected = expected + 1
        if not numpy.array_equal(tensors.pop(target).reshape(expected.shape), expected.numpy()):
            problems.append(f"{target} is not transformers' {source}{' + 1' if source.endswith('norm.weight') else ''}")
    if tensors:
        problems.append(f"tensors not accounted for: {sorted(tensors)}")
    if "lm_head.weight" in hugging_face:
        problems.append("the safetensors hold an lm_head (the LM head should be tied)")
    if family == "gemma2":
        for key, name in (("attn_logit_softcapping", "attn_logit_softcapping"), ("final_logit_softcapping", "final_logit_softcapping"), ("attention.sliding_window", "sliding_window")):
            if metadata.get(f"gemma2.{key}") != config[name]:
                problems.append(f"gemma2.{key} = {metadata.get(f'gemma2.{key}')}, config.json says {config[name]}")
        if "gemma2.attention.sliding_window_pattern" in metadata:
            problems.append("a sliding_window_pattern key was written")
        expected_types = ["sliding_attention" if layer % 2 == 0 else "full_attention" for layer in range(config["num_hidden_layers"])]
        if config["layer_types"] != expected_types:
            problems.append(f"transformers' layer_types {config['layer_types']} are not llama.cpp's pattern 2 {expected_types}")
    if family == "gemma3":
        expected = {
            "gemma3.attention.sliding_window": config["sliding_window"],
            "gemma3.rope.freq_base": config["rope_theta"],
            "gemma3.rope.freq_base_swa": config["rope_local_base_freq"],
            "gemma3.rope.scaling.type": config["rope_scaling"]["rope_type"],
            "gemma3.rope.scaling.factor": config["rope_scaling"]["factor"],
        }
        for key, value in expected.items():
            if metadata.get(key) != value:
                problems.append(f"{key} = {metadata.get(key)}, config.json says {value}")
        if "gemma3.attention.sliding_window_pattern" in metadata:
            problems.append("a sliding_window_pattern key was written")
        expected_types = ["sliding_attention" if layer % 6 < 5 else "full_attention" for layer in range(config["num_hidden_layers"])]
        if config["layer_types"] != expected_types:
            problems.append(f"transformers' layer_types {config['layer_types']} are not llama.cpp's pattern 6 {expected_types}")
    if problems:
        raise SystemExit(f"{family}: " + "; ".join(problems))
    print(f"{family}: {len(pairs)} tensors as transformers' (norms + 1), tied LM head" + {"gemma2": ", soft-caps, window and layer pattern agree", "gemma3": ", q/k norms, window, both RoPE bases, scaling and layer pattern agree"}.get(family, ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, type=pathlib.Path, help="output folder of make_models.py")
    parser.add_argument("--gguf", required=True, type=pathlib.Path, help="folder of the converted <family>.gguf files")
    arguments = parser.parse_args()
    with torch.no_grad():
        for family in FAMILIES:
            check(family, arguments.models, arguments.gguf)


if __name__ == "__main__":
    main()
