"""Exports the tiny models of make_models.py with the real third-party exporters.

For every family it runs optimum-onnx's exporter and onnxruntime-genai's model builder; for Llama
it also writes an int4 genai export and a transformers.js (onnx-community) layout. Each output
folder gets a graph-summary.txt (summarize.py) for readers of the graph.

Usage:
  python export_all.py --models /tmp/self-extend-hf --out ../../packages/onnxruntime/test/fixtures/imported \
      [--genai-builder /path/to/onnxruntime-genai/src/python/py/models/builder.py]

Without --genai-builder the builder runs as `python -m onnxruntime_genai.models.builder`, which is
how a pip install of onnxruntime-genai ships it.
"""

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys

import onnx
import onnx.numpy_helper
from onnxruntime.quantization import QuantizationMode, QuantType
from onnxruntime.quantization.onnx_quantizer import ONNXQuantizer
from onnxruntime.quantization.registry import IntegerOpsRegistry

from summarize import write_summary

FAMILIES = ("llama", "qwen2", "phi3")
USER_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def fresh_folder(folder):
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def export_optimum(model_folder, out_folder):
    from optimum.exporters.onnx import main_export

    main_export(
        str(model_folder),
        output=str(out_folder),
        task="text-generation-with-past",
        device="cpu",
        dtype="fp32",
    )
    # optimum writes config, generation config and tokenizer files itself; make sure they are all there.
    for name in USER_FILES:
        if not (out_folder / name).exists():
            shutil.copy(model_folder / name, out_folder / name)


def export_genai(model_folder, out_folder, precision, builder, cache_folder):
    command = [sys.executable]
    command += [str(builder)] if builder else ["-m", "onnxruntime_genai.models.builder"]
    # Absolute paths: the builder runs from another folder.
    folders = [str(folder.resolve()) for folder in (model_folder, out_folder, cache_folder)]
    command += ["-i", folders[0], "-o", folders[1], "-p", precision, "-e", "cpu", "-c", folders[2]]
    # The builder imports its sibling package `builders`, so it runs from its own folder.
    subprocess.run(command, check=True, cwd=pathlib.Path(builder).parent if builder else None)


def export_transformersjs(model_folder, out_folder, scratch):
    """The onnx-community layout: tokenizer and config at the root, graphs under onnx/.

    transformers.js's conversion script (scripts/convert.py, removed from its main branch in the v4
    restructure, last at commit 3c64b72) exports with optimum's main_export, runs onnxslim, then
    makes model_quantized.onnx ("q8") with onnxruntime's dynamic IntegerOps quantizer: QInt8 weights
    (QUInt8 only when Conv/GroupQueryAttention/MultiHeadAttention appear), QUInt8 activations, every
    IntegerOpsRegistry op type, EnableSubgraph and MatMulConstBOnly, and per_channel = reduce_range
    = False for model types in its NO_PER_CHANNEL_REDUCE_RANGE_MODELS list, which includes llama.
    onnxslim is not installable here, so that step is skipped (stated in the card).
    """
    from optimum.exporters.onnx import main_export

    scratch = fresh_folder(scratch)
    main_export(str(model_folder), output=str(scratch), task="text-generation-with-past", device="cpu", dtype="fp32")
    for name in USER_FILES:
        shutil.copy(scratch / name if (scratch / name).exists() else model_folder / name, out_folder / name)
    onnx_folder = out_folder / "onnx"
    onnx_folder.mkdir()
    model = onnx.load(scratch / "model.onnx")
    # Every initializer forced into model.onnx_data, as the onnx-community repositories of larger
    # models ship them; node attributes stay inline (onnxruntime cannot read an external ConstantOfShape value).
    onnx.save(model, onnx_folder / "model.onnx", save_as_external_data=True, all_tensors_to_one_file=True, location="model.onnx_data", size_threshold=0, convert_attribute=False)

    model = onnx.load(scratch / "model.onnx")
    operator_types = {node.op_type for node in model.graph.node}
    unsigned_weight_operators = {"Conv", "GroupQueryAttention", "MultiHeadAttention"}
    weight_type = QuantType.QUInt8 if operator_types & unsigned_weight_operators else QuantType.QInt8
    quantizer = ONNXQuantizer(
        model,
        False,  # per_channel: off for llama in transformers.js's table
        False,  # reduce_range: likewise
        mode=QuantizationMode.IntegerOps,
        static=False,
        weight_qType=weight_type,
        activation_qType=QuantType.QUInt8,
        tensors_range=None,
        nodes_to_quantize=[],
        nodes_to_exclude=[],
        op_types_to_quantize=set(IntegerOpsRegistry.keys()),
        extra_options={"EnableSubgraph": True, "MatMulConstBOnly": True},
    )
    quantizer.quantize_model()
    onnx.save(quantizer.model.model, onnx_folder / "model_quantized.onnx", convert_attribute=True)
    settings = {"modes": ["q8"], "per_channel": False, "reduce_range": False, "weight_type": weight_type.name}
    (out_folder / "quantize_config.json").write_text(json.dumps(settings, indent=4) + "\n")
    shutil.rmtree(scratch)


def export_ort_optimized(model_folder, out_folder, scratch):
    """optimum's export, then onnxruntime's transformer optimizer (python -m onnxruntime.transformers.optimizer),
    which fuses RoPE into com.microsoft RotaryEmbedding and the norms into (Skip)SimplifiedLayerNormalization,
    leaving the attention itself decomposed: a graph shape the other exporters do not make."""
    from onnxruntime.transformers.optimizer import optimize_model

    export_optimum(model_folder, scratch)
    config = json.loads((model_folder / "config.json").read_text())
    optimized = optimize_model(
        str(scratch / "model.onnx"),
        model_type="qwen3",
        num_heads=config["num_attention_heads"],
        hidden_size=config["hidden_size"],
        opt_level=0,
    )
    # The optimizer writes cos/sin caches of 131072 rows (8 MB here); rows past 4096 are cut so the
    # committed file stays small. Positions below 4096 (every test) compute exactly as exported.
    for tensor in optimized.model.graph.initializer:
        if tensor.name in ("cos_cache", "sin_cache") and tensor.dims[0] > 4096:
            values = onnx.numpy_helper.to_array(tensor)[:4096]
            tensor.CopyFrom(onnx.numpy_helper.from_array(values, tensor.name))
    optimized.save_model_to_file(str(out_folder / "model.onnx"))
    for name in os.listdir(scratch):
        if name != "model.onnx":
            shutil.copy(scratch / name, out_folder / name)
    shutil.rmtree(scratch)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, type=pathlib.Path, help="output folder of make_models.py")
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--genai-builder", type=pathlib.Path, help="builder.py of an onnxruntime-genai source tree")
    parser.add_argument("--scratch", type=pathlib.Path, default=pathlib.Path("/tmp/self-extend-export-scratch"))
    parser.add_argument("--only", default="optimum,genai,genai-int4,transformersjs,ort-optimizer")
    arguments = parser.parse_args()
    for family in FAMILIES:
        if not (arguments.models / family / "config.json").is_file():
            raise SystemExit(f"--models {arguments.models}: no {family}/config.json there (run make_models.py first)")
    if arguments.genai_builder and not arguments.genai_builder.is_file():
        raise SystemExit(f"--genai-builder {arguments.genai_builder}: no such file")
    exporters = arguments.only.split(",")

    outputs = []
    for family in FAMILIES:
        model_folder = arguments.models / family
        if "optimum" in exporters:
            folder = fresh_folder(arguments.out / "optimum" / family)
            export_optimum(model_folder, folder)
            outputs.append((folder, "model.onnx"))
        if "genai" in exporters:
            folder = fresh_folder(arguments.out / "genai" / family)
            export_genai(model_folder, folder, "fp32", arguments.genai_builder, arguments.scratch / "genai-cache")
            outputs.append((folder, "model.onnx"))
    if "genai-int4" in exporters:
        folder = fresh_folder(arguments.out / "genai-int4" / "llama")
        export_genai(arguments.models / "llama", folder, "int4", arguments.genai_builder, arguments.scratch / "genai-cache")
        outputs.append((folder, "model.onnx"))
    if "transformersjs" in exporters:
        folder = fresh_folder(arguments.out / "transformersjs" / "llama")
        export_transformersjs(arguments.models / "llama", folder, arguments.scratch / "transformersjs")
        outputs.append((folder, "onnx/model.onnx", "onnx/model_quantized.onnx"))

    if "ort-optimizer" in exporters:
        folder = fresh_folder(arguments.out / "ort-optimizer" / "llama")
        export_ort_optimized(arguments.models / "llama", folder, fresh_folder(arguments.scratch / "ort-optimizer"))
        outputs.append((folder, "model.onnx"))

    for folder, *model_names in outputs:
        write_summary(folder, model_names)
        print(f"wrote {folder}: {', '.join(model_names)}")


if __name__ == "__main__":
    main()
