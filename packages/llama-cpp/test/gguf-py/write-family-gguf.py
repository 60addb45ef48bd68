"""Writes a Llama 3 (rope_freqs), Qwen2 (q/k/v biases) or Phi-3 (fused attn_qkv, fused gate/up) GGUF
with llama.cpp's gguf-py, from unfused float32 weights, using gguf-py's own tensor and key names, so
a test can check that our reader agrees with llama.cpp's naming and fusing rather than with our own
writer.

usage: write-family-gguf.py <weights.json> <out.gguf>
weights.json: {"architecture", "description": {...}, "tensors": {logical name: {"shape", "file"}},
               "vocabulary": {"tokens", "scores", "types", "bos", "eos", "unknown"}
                           | {"bpeTokenizerFolder", "preTokenizer"}}
The second vocabulary form writes a real byte-level BPE vocabulary from a Hugging Face
tokenizer.json (gguf-py/bpe_vocabulary.py); its size must be the description's vocabularySize.
"""
import json
import os
import sys
from pathlib import Path

import gguf
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bpe_vocabulary import add_bpe_vocabulary  # noqa: E402

spec_path, out_path = sys.argv[1], sys.argv[2]
folder = os.path.dirname(spec_path)
with open(spec_path) as file:
    spec = json.load(file)
arch_name = spec["architecture"]
description = spec["description"]
arch = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2, "phi3": gguf.MODEL_ARCH.PHI3}[arch_name]


def load(name):
    entry = spec["tensors"][name]
    data = np.fromfile(os.path.join(folder, entry["file"]), dtype=np.float32)
    return data.reshape(entry["shape"])


def tensor_name(kind, block=None, suffix="weight"):
    name = gguf.TENSOR_NAMES[kind]
    return (name.format(bid=block) if block is not None else name) + "." + suffix


writer = gguf.GGUFWriter(out_path, gguf.MODEL_ARCH_NAMES[arch])
writer.add_name(description["name"])
writer.add_context_length(description["trainedContext"])
writer.add_embedding_length(description["embeddingSize"])
writer.add_block_count(description["layerCount"])
writer.add_feed_forward_length(description["feedForwardSize"])
writer.add_head_count(description["headCount"])
writer.add_head_count_kv(description["kvHeadCount"])
writer.add_rope_dimension_count(description["rotaryDimension"])
writer.add_rope_freq_base(description["ropeBase"])
writer.add_layer_norm_rms_eps(description["normEpsilon"])
writer.add_vocab_size(description["vocabularySize"])
writer.add_file_type(gguf.LlamaFileType.ALL_F32)

vocabulary = spec["vocabulary"]
if "bpeTokenizerFolder" in vocabulary:
    summary = add_bpe_vocabulary(writer, Path(vocabulary["bpeTokenizerFolder"]), vocabulary["preTokenizer"])
    if summary["tokens"] != description["vocabularySize"]:
        raise SystemExit(f"the tokenizer has {summary['tokens']} tokens, the weights {description['vocabularySize']}")
else:
    writer.add_tokenizer_model("llama")
    writer.add_token_list(vocabulary["tokens"])
    writer.add_token_scores(vocabulary["scores"])
    writer.add_token_types(vocabulary["types"])
    writer.add_bos_token_id(vocabulary["bos"])
    writer.add_eos_token_id(vocabulary["eos"])
    writer.add_unk_token_id(vocabulary["unknown"])
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)

T = gguf.MODEL_TENSOR
writer.add_tensor(tensor_name(T.TOKEN_EMBD), load("tokenEmbedding"))
writer.add_tensor(tensor_name(T.OUTPUT_NORM), load("outputNorm"))
if "output" in spec["tensors"]:
    writer.add_tensor(tensor_name(T.OUTPUT), load("output"))
if "ropeFrequencyFactors" in description:
    writer.add_tensor(tensor_name(T.ROPE_FREQS), np.array(description["ropeFrequencyFactors"], dtype=np.float32))
for block in range(description["layerCount"]):
    layer = lambda name: load(f"{block}.{name}")  # noqa: E731
    writer.add_tensor(tensor_name(T.ATTN_NORM, block), layer("attentionNorm"))
    if arch_name == "phi3":
        # As llama.cpp's Phi-3 converter keeps Hugging Face's qkv_proj and gate_up_proj: q, k, v rows; gate, up rows.
        fused = np.concatenate([layer("query"), layer("key"), layer("value")])
        writer.add_tensor(tensor_name(T.ATTN_QKV, block), fused)
        writer.add_tensor(tensor_name(T.FFN_UP, block), np.concatenate([layer("gate"), layer("up")]))
    else:
        writer.add_tensor(tensor_name(T.ATTN_Q, block), layer("query"))
        writer.add_tensor(tensor_name(T.ATTN_K, block), layer("key"))
        writer.add_tensor(tensor_name(T.ATTN_V, block), layer("value"))
        if description["hasQkvBias"]:
            writer.add_tensor(tensor_name(T.ATTN_Q, block, "bias"), layer("queryBias"))
            writer.add_tensor(tensor_name(T.ATTN_K, block, "bias"), layer("keyBias"))
            writer.add_tensor(tensor_name(T.ATTN_V, block, "bias"), layer("valueBias"))
        writer.add_tensor(tensor_name(T.FFN_GATE, block), layer("gate"))
        writer.add_tensor(tensor_name(T.FFN_UP, block), layer("up"))
    writer.add_tensor(tensor_name(T.ATTN_OUT, block), layer("output"))
    writer.add_tensor(tensor_name(T.FFN_NORM, block), layer("feedForwardNorm"))
    writer.add_tensor(tensor_name(T.FFN_DOWN, block), layer("down"))

writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_tensors_to_file()
writer.close()
