"""Sanity check: every export runs in onnxruntime and matches the unmodified transformers model.

For each export folder: a prefill of a short prompt with an empty cache, then one decode step fed
the export's own present.* outputs, compared with the transformers model's logits for the same
tokens (plain attention, which is G = 1 in Self-Extend terms). Full-precision exports must agree
within 1e-4. Where oracle.py has run, the graphs that take position_ids are also run plainly over the
oracle's 512-token prompt and compared with its stored plain logits. Quantized ones (int4 MatMulNBits, q8 MatMulInteger) are only reported: their distance
from the float model is quantization error on random weights, which says nothing about the graph.

Usage: python check_exports.py --models /tmp/self-extend-hf --exports ../../packages/onnxruntime/test/fixtures/imported
"""

import argparse
import json
import pathlib

import numpy
import onnxruntime
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

PROMPT_LENGTH = 16
FULL_PRECISION_TOLERANCE = 1e-4
REPORT_ONLY = None

EXPORTS = [
    ("optimum/llama/model.onnx", "llama", FULL_PRECISION_TOLERANCE),
    ("optimum/qwen2/model.onnx", "qwen2", FULL_PRECISION_TOLERANCE),
    ("optimum/phi3/model.onnx", "phi3", FULL_PRECISION_TOLERANCE),
    ("genai/llama/model.onnx", "llama", FULL_PRECISION_TOLERANCE),
    ("genai/qwen2/model.onnx", "qwen2", FULL_PRECISION_TOLERANCE),
    ("genai/phi3/model.onnx", "phi3", FULL_PRECISION_TOLERANCE),
    ("genai-int4/llama/model.onnx", "llama", REPORT_ONLY),
    ("transformersjs/llama/onnx/model.onnx", "llama", FULL_PRECISION_TOLERANCE),
    ("transformersjs/llama/onnx/model_quantized.onnx", "llama", REPORT_ONLY),
]


def prompt_tokens(tokenizer_path, text_path):
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    return tokenizer.encode(text_path.read_text()[:2000]).ids[:PROMPT_LENGTH]


def run_export(session, tokens, past, past_length):
    feeds = {}
    for value in session.get_inputs():
        if value.name == "input_ids":
            feeds[value.name] = numpy.array([tokens], dtype=numpy.int64)
        elif value.name == "attention_mask":
            feeds[value.name] = numpy.ones((1, past_length + len(tokens)), dtype=numpy.int64)
        elif value.name == "position_ids":
            feeds[value.name] = numpy.arange(past_length, past_length + len(tokens), dtype=numpy.int64)[None, :]
        elif value.name.startswith("past_key_values."):
            feeds[value.name] = past[value.name]
        else:
            raise SystemExit(f"input {value.name}: the check does not know how to feed it")
    names = [value.name for value in session.get_outputs()]
    outputs = dict(zip(names, session.run(names, feeds)))
    next_past = {name.replace("present.", "past_key_values."): array for name, array in outputs.items() if name.startswith("present.")}
    return outputs["logits"][0], next_past


def check(folder_root, models_root, text_path, relative_path, family, tolerance):
    model_path = folder_root / relative_path
    model = AutoModelForCausalLM.from_pretrained(models_root / family).eval()
    config = model.config
    head_size = config.hidden_size // config.num_attention_heads
    tokens = prompt_tokens(models_root / family / "tokenizer.json", text_path)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    empty = numpy.zeros((1, config.num_key_value_heads, 0, head_size), dtype=numpy.float32)
    past = {value.name: empty for value in session.get_inputs() if value.name.startswith("past_key_values.")}
    prefill_logits, past = run_export(session, tokens, past, 0)
    next_token = int(prefill_logits[-1].argmax())
    decode_logits, _ = run_export(session, [next_token], past, len(tokens))
    with torch.no_grad():
        expected = model(torch.tensor([tokens + [next_token]])).logits[0].numpy()
    prefill_difference = float(numpy.abs(prefill_logits - expected[: len(tokens)]).max())
    decode_difference = float(numpy.abs(decode_logits[-1] - expected[-1]).max())
    same_greedy = bool((prefill_logits.argmax(-1) == expected[: len(tokens)].argmax(-1)).all() and decode_logits[-1].argmax() == expected[-1].argmax())
    passed = tolerance is REPORT_ONLY or max(prefill_difference, decode_difference) <= tolerance
    return {
        "export": relative_path,
        "prefill_tokens": len(tokens),
        "max_abs_difference_prefill": prefill_difference,
        "max_abs_difference_decode_step": decode_difference,
        "same_greedy_tokens": same_greedy,
        "tolerance": tolerance,
        "passed": passed,
    }


def check_plain_long_prompt(folder_root, relative_path, family):
    """The oracle file's plain logits at its last prompt position (4 x the trained context), against
    the export run plainly over the same 512 tokens: the reference a G = 1 run at 4 x L can use.
    Only for graphs that take position_ids; genai's refuses sequences past its 128-entry cos cache."""
    record = json.loads((folder_root / "oracle" / f"{family}.json").read_text())
    tokens = record["prompt_tokens"]
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(folder_root / relative_path), options, providers=["CPUExecutionProvider"])
    # These graphs declare [batch, key/value heads, past, head size] with the two sizes fixed.
    past = {value.name: numpy.zeros((1, value.shape[1], 0, value.shape[3]), dtype=numpy.float32) for value in session.get_inputs() if value.name.startswith("past_key_values.")}
    logits, _ = run_export(session, tokens, past, 0)
    expected = numpy.array(record["plain_logits_last_prompt_position"], dtype=numpy.float64)
    difference = float(numpy.abs(logits[-1] - expected).max())
    result = {"export": relative_path, "plain_prompt_tokens": len(tokens), "max_abs_difference_vs_oracle_plain_last_position": difference, "tolerance": FULL_PRECISION_TOLERANCE, "passed": difference <= FULL_PRECISION_TOLERANCE}
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, type=pathlib.Path, help="output folder of make_models.py")
    parser.add_argument("--exports", required=True, type=pathlib.Path, help="output folder of export_all.py")
    default_text = pathlib.Path(__file__).resolve().parents[3] / "shared" / "models" / "tinystories_val_256k.txt"
    parser.add_argument("--text", type=pathlib.Path, default=default_text)
    arguments = parser.parse_args()
    torch.manual_seed(0)
    results = []
    for relative_path, family, tolerance in EXPORTS:
        if not (arguments.exports / relative_path).is_file():
            raise SystemExit(f"--exports {arguments.exports}: no {relative_path} there (run export_all.py first)")
        result = check(arguments.exports, arguments.models, arguments.text, relative_path, family, tolerance)
        results.append(result)
        print(json.dumps(result))
    if (arguments.exports / "oracle").is_dir():
        for relative_path, family in (("optimum/llama/model.onnx", "llama"), ("optimum/qwen2/model.onnx", "qwen2"), ("optimum/phi3/model.onnx", "phi3"), ("transformersjs/llama/onnx/model.onnx", "llama")):
            result = check_plain_long_prompt(arguments.exports, relative_path, family)
            results.append(result)
            print(json.dumps(result))
    failed = [result["export"] for result in results if not result["passed"]]
    if failed:
        raise SystemExit(f"exports off transformers' logits beyond tolerance: {', '.join(failed)}")
    print(f"all {len(results)} exports ran; the full-precision ones match transformers' unmodified model within {FULL_PRECISION_TOLERANCE}")


if __name__ == "__main__":
    main()
