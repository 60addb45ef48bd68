"""Independent Self-Extend oracle for Phi-3 with LongRoPE: transformers' own Phi3ForCausalLM, attention replaced.

Written from ../shared/docs/self-extend-spec.md and transformers' documented LongRoPE rule, not from
this repository's TypeScript. LongRoPE (Phi-3-mini-128k, Phi-3.5-mini) divides each rotary pair's
frequency by a per-pair factor, the long factors when the sequence is longer than
original_max_position_embeddings and the short ones otherwise, and multiplies cos and sin by the
attention factor sqrt(1 + ln(max / original) / ln(original)) (so every score by its square).
Self-Extend picks positions, never frequencies, so for query i and key j <= i:
  neighbor level (i - j < W): RoPE at i for the query and at j for the key;
  group level (i - j >= W):   RoPE at floor(i/G) + W - W/G for the query and at floor(j/G) for the key;
both with the factors the whole sequence's length selects and the attention factor. Scores are
q.k / sqrt(head_dim), one causal softmax. Everything else (fused qkv and gate/up projections,
RMSNorms, SwiGLU, LM head) is transformers' own code. Float64, except the RoPE angle table
(float32, as transformers computes it). The shared helpers (greedy runs, records, float64 softmax)
are ../gemma-models/oracle.py's.

Checks, printed, before any data is written (the script stops if one fails):
  - G = 1 reproduces transformers' unmodified forward over L tokens (long factors) and over a
    sequence shorter than the original context (short factors);
  - the same without the attention factor, or with the other factor set, does NOT reproduce it;
  - on the long sequence at G = 8, the two-level form equals the relative form (query unrotated,
    key j rotated by -r(i, j) with r written from the spec's one-level formula).

Usage: python oracle.py --models /tmp/phi3-hf --out ../../packages/reference/test/fixtures/phi3
"""

import argparse
import importlib.util
import json
import math
import pathlib

import torch
import transformers
from transformers import AutoModelForCausalLM

_gemma_oracle_path = pathlib.Path(__file__).resolve().parent.parent / "gemma-models" / "oracle.py"
_specification = importlib.util.spec_from_file_location("gemma_oracle", _gemma_oracle_path)
shared = importlib.util.module_from_spec(_specification)
_specification.loader.exec_module(shared)

NAME = "phi3-longrope"
TRAINED_CONTEXT = shared.TRAINED_CONTEXT
GROUP_SIZE = shared.GROUP_SIZE
NEIGHBOR_WINDOW = shared.NEIGHBOR_WINDOW
# A run that stays within the original context, so the short factors apply throughout.
SHORT_PROMPT_LENGTH = 24
SHORT_GENERATED = 8
SHORT_POSITIONS = (7, 15, SHORT_PROMPT_LENGTH - 1)


def longrope_table(config, positions, sequence_length, angle_dtype=torch.float32, attention_factor=True, swap_factors=False):
    """cos and sin (half-split layout) as transformers' LongRoPE computes them for a sequence of
    `sequence_length` tokens: its factors chosen by that length, cos/sin times the attention factor."""
    scaling = config.rope_scaling
    original = config.original_max_position_embeddings
    long = sequence_length > original
    if swap_factors:
        long = not long
    factors = torch.tensor(scaling["long_factor"] if long else scaling["short_factor"], dtype=torch.float32)
    head_dim = config.hidden_size // config.num_attention_heads
    exponent = torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim
    inverse_frequency = (1.0 / (factors * config.rope_theta**exponent)).to(angle_dtype)
    angles = positions.to(angle_dtype)[..., None] * inverse_frequency
    scale = math.sqrt(1 + math.log(config.max_position_embeddings / original) / math.log(original)) if attention_factor else 1.0
    cos = torch.cat([angles.cos(), angles.cos()], dim=-1) * scale
    sin = torch.cat([angles.sin(), angles.sin()], dim=-1) * scale
    return cos, sin


def project(module, config, hidden_states):
    batch, length, _ = hidden_states.shape
    head_dim = config.hidden_size // config.num_attention_heads
    query_width = config.num_attention_heads * head_dim
    key_width = config.num_key_value_heads * head_dim
    fused = module.qkv_proj(hidden_states)
    query, key, value = fused[..., :query_width], fused[..., query_width : query_width + key_width], fused[..., query_width + key_width :]

    def heads(states):
        return states.reshape(batch, length, -1, head_dim).transpose(1, 2)

    repeat = config.num_attention_heads // config.num_key_value_heads
    return heads(query), heads(key).repeat_interleave(repeat, dim=1), heads(value).repeat_interleave(repeat, dim=1)


def make_attention(attention_factor=True, swap_factors=False):
    def phi3_attention(module, config, layer_index, hidden_states, group_size, window, angle_dtype=torch.float32, window_edge_inclusive=False):
        query, key, value = project(module, config, hidden_states)
        length = query.shape[2]

        def rotate(states, positions):
            cos, sin = longrope_table(config, positions, length, angle_dtype, attention_factor, swap_factors)
            return states * cos.to(states.dtype) + shared.rotate_half(states) * sin.to(states.dtype)

        index = torch.arange(length)
        distance = index[:, None] - index[None, :]
        exact_scores = rotate(query, index) @ rotate(key, index).transpose(-1, -2)
        group_query = torch.div(index, group_size, rounding_mode="floor") + window - window // group_size
        group_key = torch.div(index, group_size, rounding_mode="floor")
        group_scores = rotate(query, group_query) @ rotate(key, group_key).transpose(-1, -2)
        head_dim = config.hidden_size // config.num_attention_heads
        scores = torch.where(distance < window, exact_scores, group_scores) * head_dim**-0.5
        return shared.finish(module, config, scores, value, distance >= 0)

    return phi3_attention


phi3_attention = make_attention()


def relative_form_attention(module, config, layer_index, hidden_states, group_size, window, angle_dtype=torch.float64, window_edge_inclusive=False):
    """Self-Extend written the other way the spec allows: the query unrotated, key j rotated by
    -r(i, j) (the attention factor squared, since only the key is rotated). No position code shared
    with phi3_attention."""
    query, key, value = project(module, config, hidden_states)
    length = query.shape[2]
    cos, sin = longrope_table(config, -shared.relative_positions(length, group_size, window), length, angle_dtype)
    original = config.original_max_position_embeddings
    squared = 1 + math.log(config.max_position_embeddings / original) / math.log(original)
    # longrope_table multiplied cos/sin by the factor once; the query's share is the other one.
    cos, sin = cos * math.sqrt(squared), sin * math.sqrt(squared)
    keys_for_query = key[:, :, None, :, :] * cos.to(key.dtype) + shared.rotate_half(key)[:, :, None, :, :] * sin.to(key.dtype)
    head_dim = config.hidden_size // config.num_attention_heads
    scores = torch.einsum("bhid,bhijd->bhij", query, keys_for_query) * head_dim**-0.5
    index = torch.arange(length)
    return shared.finish(module, config, scores, value, index[:, None] >= index[None, :])


def checks_for(model64, model32, tokens):
    long_sample = tokens[:TRAINED_CONTEXT]
    short_sample = tokens[:SHORT_PROMPT_LENGTH]
    checks = {}
    for label, sample in (("long", long_sample), ("short", short_sample)):
        with shared.float64_softmax():
            transformers64 = shared.logits_of(model64, sample)
        transformers32 = shared.logits_of(model32, sample)
        with shared.self_extended(model64, 1, NEIGHBOR_WINDOW, phi3_attention):
            group_one = shared.logits_of(model64, sample)
        with shared.self_extended(model64, 1, NEIGHBOR_WINDOW, make_attention(attention_factor=False)):
            without_attention_factor = shared.logits_of(model64, sample)
        with shared.self_extended(model64, 1, NEIGHBOR_WINDOW, make_attention(swap_factors=True)):
            other_factors = shared.logits_of(model64, sample)
        checks[f"g1_{label}_vs_transformers_float64"] = shared.largest(group_one, transformers64)
        checks[f"g1_{label}_vs_transformers_float32"] = shared.largest(group_one, transformers32)
        checks[f"g1_{label}_without_attention_factor_vs_transformers_float64"] = shared.largest(without_attention_factor, transformers64)
        checks[f"g1_{label}_other_factors_vs_transformers_float64"] = shared.largest(other_factors, transformers64)
    with shared.self_extended(model64, GROUP_SIZE, NEIGHBOR_WINDOW, phi3_attention, torch.float64):
        two_level = shared.logits_of(model64, tokens)
    with shared.self_extended(model64, GROUP_SIZE, NEIGHBOR_WINDOW, relative_form_attention, torch.float64):
        relative_form = shared.logits_of(model64, tokens)
    checks["two_level_vs_relative_form_float64"] = shared.largest(two_level, relative_form)
    for name, value in checks.items():
        print(f"check {NAME}: {name} {value:.2e}")
    for name in ("g1_long_vs_transformers_float64", "g1_short_vs_transformers_float64", "two_level_vs_relative_form_float64"):
        if checks[name] > 1e-9:
            raise SystemExit(f"{NAME}: {name} = {checks[name]}, expected float64 rounding (< 1e-9)")
    for label in ("long", "short"):
        if checks[f"g1_{label}_vs_transformers_float32"] > 1e-4:
            raise SystemExit(f"{NAME}: the oracle at G = 1 ({label}) is {checks[f'g1_{label}_vs_transformers_float32']} from transformers float32")
        for mutation in ("without_attention_factor", "other_factors"):
            if checks[f"g1_{label}_{mutation}_vs_transformers_float64"] < 1e-3:
                raise SystemExit(f"{NAME}: {mutation} changed nothing on the {label} sequence: the G = 1 check does not cover it")
    return checks


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, type=pathlib.Path, help="output folder of make_models.py")
    parser.add_argument("--out", required=True, type=pathlib.Path)
    default_text = pathlib.Path(__file__).resolve().parents[3] / "shared" / "models" / "tinystories_val_256k.txt"
    parser.add_argument("--text", type=pathlib.Path, default=default_text)
    arguments = parser.parse_args()
    folder = arguments.models / NAME
    if not (folder / "config.json").is_file():
        raise SystemExit(f"--models {arguments.models}: no {NAME}/config.json there (run make_models.py first)")
    if not arguments.text.is_file():
        raise SystemExit(f"--text {arguments.text}: no such file")
    torch.use_deterministic_algorithms(True)
    model32 = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()
    model64 = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval().double()
    config = model64.config
    if config.max_position_embeddings != TRAINED_CONTEXT:
        raise SystemExit(f"{NAME}: max_position_embeddings {config.max_position_embeddings}, expected {TRAINED_CONTEXT}")
    tokens = shared.prompt_tokens(folder / "tokenizer.model", arguments.text)
    print(f"{NAME}:")
    checks = checks_for(model64, model32, tokens)
    record = {
        "family": NAME,
        "model": f"tools/phi3-models/make_models.py (seeded, random), converted by llama.cpp's convert_hf_to_gguf.py to {NAME}.gguf",
        "trained_context": TRAINED_CONTEXT,
        "original_context": config.original_max_position_embeddings,
        "precision": "float64, except the RoPE angle table (float32); logits rounded to 8 significant digits",
        "prompt_source": "BOS (id 1) + the start of ../shared/models/tinystories_val_256k.txt encoded by tok512.model (sentencepiece)",
        "self_extend": shared.run_record(
            model64, model32, tokens, GROUP_SIZE, shared.SELF_EXTEND_GENERATED, shared.SELF_EXTEND_POSITIONS, attention=phi3_attention
        ),
        "plain": shared.run_record(
            model64, model32, tokens[: shared.PLAIN_PROMPT_LENGTH], 1, shared.PLAIN_GENERATED, shared.PLAIN_POSITIONS, attention=phi3_attention
        ),
        "plain_within_original_context": shared.run_record(
            model64, model32, tokens[:SHORT_PROMPT_LENGTH], 1, SHORT_GENERATED, SHORT_POSITIONS, attention=phi3_attention
        ),
        "checks": {name: float(f"{value:.3g}") for name, value in checks.items()},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    arguments.out.mkdir(parents=True, exist_ok=True)
    # Written whole to a temporary name, then renamed: a stopped run never leaves half a file.
    target = arguments.out / f"{NAME}-oracle.json"
    temporary = target.with_suffix(".json.partial")
    temporary.write_text(json.dumps(record, separators=(",", ":")) + "\n")
    temporary.replace(target)
    print(f"wrote {target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
