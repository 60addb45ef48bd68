"""Independent Self-Extend oracle: transformers' own PyTorch models with their attention replaced.

Written from /work/shared/docs/self-extend-spec.md (the paper's mapping), not from LongLM's code.
For a whole sequence without a cache, query i and key j (0 <= j <= i) use
  neighbor level (i - j < W): RoPE at i for the query and at j for the key;
  group level (i - j >= W):   RoPE at floor(i/G) + W - W/G for the query and at floor(j/G) for the key;
and one softmax runs over the merged scores. Every attention module of the transformers model is
replaced by that computation, done from the module's own projection weights (q/k/v or fused qkv,
with Qwen2's biases) and our own RoPE; embeddings, norms, MLPs and the LM head stay transformers'.
The model runs in float64, with two float32 steps that transformers and the exported graphs share:
the RoPE angle table (ours, computed in float32 on purpose) and RMSNorm (transformers' own module
computes in float32 whatever the model's dtype, so hidden states are rounded to float32 at every
norm). The oracle's own error is therefore about float32 rounding of the norm outputs (~1e-7
relative), far below the ~1e-5 that fp32 attention arithmetic adds.

Checks, printed, before any data is written (the script stops if one fails):
  - the two-level positions give the spec's worked example (L = 7, W = 4, G = 2, N = 10);
  - G = 1, and a sequence shorter than W, reproduce transformers' unmodified forward;
  - at G = 8, W = 32 over the prompt, the two-level form equals the relative form (query unrotated,
    key j rotated by -r(i, j)).

Usage: python oracle.py --models /tmp/self-extend-hf --out ../../packages/onnxruntime/test/fixtures/imported/oracle
"""

import argparse
import contextlib
import json
import math
import pathlib

import torch
import transformers
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

FAMILIES = ("llama", "qwen2", "phi3")
TRAINED_CONTEXT = 128
PROMPT_LENGTH = 4 * TRAINED_CONTEXT
GENERATED_TOKENS = 128
GROUP_SIZE = 8
NEIGHBOR_WINDOW = 32
STORED_POSITIONS = (127, 255, 383, PROMPT_LENGTH - 1)
SIGNIFICANT_DIGITS = 7


def query_and_key_positions(length, group_size, window):
    """The two-level positions: (neighbor query, neighbor key, group query, group key) per index."""
    index = torch.arange(length)
    group_query = torch.div(index, group_size, rounding_mode="floor") + window - window // group_size
    group_key = torch.div(index, group_size, rounding_mode="floor")
    return index, index, group_query, group_key


def relative_positions(length, group_size, window):
    """The spec's one-level map r(i, j), written from its formula, not from the two-level positions."""
    i = torch.arange(length)[:, None]
    j = torch.arange(length)[None, :]
    grouped = torch.div(i, group_size, rounding_mode="floor") - torch.div(j, group_size, rounding_mode="floor") + window - window // group_size
    return torch.where(i - j < window, i - j, grouped)


def rotate(states, positions, theta, angle_dtype=torch.float32):
    """RoPE in transformers' half-split layout: pairs (d, d + head_dim/2), frequency theta^(-2d/head_dim).

    The angle table is computed in float32 (frequencies, position x frequency, cos and sin), as
    transformers and every exporter's graph do; rounding the angle differently would move logits by
    ~1e-5 at these positions, more than the gap between the oracle and a correct fp32 graph.
    """
    head_dim = states.shape[-1]
    cos, sin = rotation_table(positions, head_dim, theta, angle_dtype)
    return states * cos.to(states.dtype) + rotate_half(states) * sin.to(states.dtype)


def rotation_table(positions, head_dim, theta, angle_dtype):
    """cos and sin of position x frequency, duplicated over both halves: shape positions.shape + (head_dim,)."""
    inverse_frequency = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).to(angle_dtype) / head_dim)
    angles = positions.to(angle_dtype)[..., None] * inverse_frequency
    return torch.cat([angles.cos(), angles.cos()], dim=-1), torch.cat([angles.sin(), angles.sin()], dim=-1)


def rotate_half(states):
    half = states.shape[-1] // 2
    return torch.cat([-states[..., half:], states[..., :half]], dim=-1)


def project(module, config, hidden_states):
    head_dim = config.hidden_size // config.num_attention_heads
    batch, length, _ = hidden_states.shape
    if hasattr(module, "qkv_proj"):
        # Phi-3's fused projection: queries, then keys, then values along the output features.
        fused = module.qkv_proj(hidden_states)
        query_width = config.num_attention_heads * head_dim
        key_width = config.num_key_value_heads * head_dim
        query, key, value = fused.split([query_width, key_width, key_width], dim=-1)
    else:
        query, key, value = module.q_proj(hidden_states), module.k_proj(hidden_states), module.v_proj(hidden_states)

    def heads(states):
        return states.view(batch, length, -1, head_dim).transpose(1, 2)

    return heads(query), heads(key), heads(value)


def self_extend_attention(module, config, hidden_states, group_size, window, angle_dtype=torch.float32):
    query, key, value = project(module, config, hidden_states)
    batch, _, length, head_dim = query.shape
    # Grouped-query attention: query head h reads key/value head h // (heads per key/value head).
    repeat = config.num_attention_heads // config.num_key_value_heads
    key = key.repeat_interleave(repeat, dim=1)
    value = value.repeat_interleave(repeat, dim=1)
    neighbor_query, neighbor_key, group_query, group_key = query_and_key_positions(length, group_size, window)
    scale = 1.0 / math.sqrt(head_dim)
    theta = config.rope_theta
    neighbor_scores = rotate(query, neighbor_query, theta, angle_dtype) @ rotate(key, neighbor_key, theta, angle_dtype).transpose(-1, -2) * scale
    group_scores = rotate(query, group_query, theta, angle_dtype) @ rotate(key, group_key, theta, angle_dtype).transpose(-1, -2) * scale
    index = torch.arange(length)
    distance = index[:, None] - index[None, :]
    scores = torch.where(distance < window, neighbor_scores, group_scores)
    scores = scores.masked_fill(distance < 0, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    output = (weights @ value).transpose(1, 2).reshape(batch, length, -1)
    return module.o_proj(output)


def relative_form_attention(module, config, hidden_states, group_size, window, angle_dtype):
    """The same attention written the other way the spec allows: the query stays unrotated and each
    key j is rotated by -r(i, j), with r the one-level relative position map. RoPE scores depend only
    on the position difference, so this must equal the two-level form; it shares no position code
    with it beyond relative_positions, which the worked example pins down."""
    query, key, value = project(module, config, hidden_states)
    batch, _, length, head_dim = query.shape
    repeat = config.num_attention_heads // config.num_key_value_heads
    key = key.repeat_interleave(repeat, dim=1)
    value = value.repeat_interleave(repeat, dim=1)
    relative = relative_positions(length, group_size, window)
    cos, sin = rotation_table(-relative, head_dim, config.rope_theta, angle_dtype)
    # keys_for_query[b, h, i, j] is key j rotated by -r(i, j).
    keys_for_query = key[:, :, None, :, :] * cos.to(key.dtype) + rotate_half(key)[:, :, None, :, :] * sin.to(key.dtype)
    scores = torch.einsum("bhid,bhijd->bhij", query, keys_for_query) / math.sqrt(head_dim)
    index = torch.arange(length)
    scores = scores.masked_fill(index[:, None] < index[None, :], float("-inf"))
    output = (torch.softmax(scores, dim=-1) @ value).transpose(1, 2).reshape(batch, length, -1)
    return module.o_proj(output)


def check_relative_form(family, model64, tokens):
    """Two-level and relative forms of Self-Extend agree, both with float64 angles."""
    with self_extended(model64, GROUP_SIZE, NEIGHBOR_WINDOW, angle_dtype=torch.float64):
        two_level = logits_of(model64, tokens)
    with self_extended(model64, GROUP_SIZE, NEIGHBOR_WINDOW, relative_form_attention, torch.float64):
        relative_form = logits_of(model64, tokens)
    difference = float((two_level - relative_form).abs().max())
    # At the logits, the next RMSNorm's float32 rounding hides float64-level differences; layer 0's
    # attention output shows them.
    layer = model64.model.layers[0]
    with torch.no_grad():
        hidden_states = layer.input_layernorm(model64.model.embed_tokens(torch.tensor([tokens])))
        module_difference = float(
            (
                self_extend_attention(layer.self_attn, model64.config, hidden_states, GROUP_SIZE, NEIGHBOR_WINDOW, torch.float64)
                - relative_form_attention(layer.self_attn, model64.config, hidden_states, GROUP_SIZE, NEIGHBOR_WINDOW, torch.float64)
            )
            .abs()
            .max()
        )
    print(f"check {family}: {len(tokens)} tokens at G = {GROUP_SIZE}, W = {NEIGHBOR_WINDOW}: two-level form vs relative form "
          f"{difference:.2e} at the logits, {module_difference:.2e} at layer 0's attention output")
    if difference > 1e-9 or module_difference > 1e-9:
        raise SystemExit(f"{family}: the two-level Self-Extend differs from the relative form by {difference} / {module_difference}")
    return difference, module_difference


@contextlib.contextmanager
def self_extended(model, group_size, window, attention=self_extend_attention, angle_dtype=torch.float32):
    """Replaces every attention module's forward for the duration; restores transformers' on exit."""
    config = model.config
    modules = [layer.self_attn for layer in model.model.layers]
    for module in modules:

        def forward(hidden_states, *_, module=module, **__):
            return attention(module, config, hidden_states, group_size, window, angle_dtype), None

        module.forward = forward
    try:
        yield model
    finally:
        for module in modules:
            del module.forward


def logits_of(model, tokens):
    with torch.no_grad():
        return model(torch.tensor([tokens]), use_cache=False).logits[0]


def round_list(values):
    return [float(f"{value:.{SIGNIFICANT_DIGITS}g}") for value in values.tolist()]


def check_position_map():
    # The spec's worked example (the paper's Figure 3): L = 7, W = 4, G = 2, N = 10.
    relative = relative_positions(10, 2, 4)
    expectations = {9: [6, 6, 5, 5, 4, 4, 3, 2, 1, 0], 5: [4, 4, 3, 2, 1, 0]}
    for row, expected in expectations.items():
        actual = relative[row, : row + 1].tolist()
        if actual != expected:
            raise SystemExit(f"position map row {row}: {actual}, the spec's worked example says {expected}")
    # The two-level positions the attention uses give the same map, for the example and the real run.
    for length, group_size, window in ((10, 2, 4), (PROMPT_LENGTH + GENERATED_TOKENS, GROUP_SIZE, NEIGHBOR_WINDOW)):
        neighbor_query, neighbor_key, group_query, group_key = query_and_key_positions(length, group_size, window)
        distance = neighbor_query[:, None] - neighbor_key[None, :]
        two_level = torch.where(distance < window, distance, group_query[:, None] - group_key[None, :])
        if not torch.equal(two_level.tril(), relative_positions(length, group_size, window).tril()):
            raise SystemExit(f"two-level positions disagree with the one-level map at N = {length}, G = {group_size}, W = {window}")
    print("check: position map equals the spec's worked example (W = 4, G = 2, N = 10), and the two-level positions give the same map")


def check_plain_equivalence(family, model64, model32, tokens):
    """G = 1, and a sequence shorter than W, must be plain attention."""
    plain64 = logits_of(model64, tokens)
    plain32 = logits_of(model32, tokens)
    with self_extended(model64, 1, NEIGHBOR_WINDOW):
        group_one = logits_of(model64, tokens)
    short = tokens[: NEIGHBOR_WINDOW - 1]
    with self_extended(model64, GROUP_SIZE, NEIGHBOR_WINDOW):
        short_extended = logits_of(model64, short)
    differences = {
        "g1_vs_transformers_float64": float((group_one - plain64).abs().max()),
        "g1_vs_transformers_float32": float((group_one - plain32.double()).abs().max()),
        "shorter_than_window_vs_transformers_float64": float((short_extended - plain64[: len(short)]).abs().max()),
    }
    print(f"check {family}: {len(tokens)} tokens, G = 1 vs transformers float64 {differences['g1_vs_transformers_float64']:.2e}, "
          f"vs transformers float32 {differences['g1_vs_transformers_float32']:.2e}; "
          f"{len(short)} tokens (< W) at G = {GROUP_SIZE} vs float64 {differences['shorter_than_window_vs_transformers_float64']:.2e}")
    if differences["g1_vs_transformers_float64"] > 1e-9 or differences["shorter_than_window_vs_transformers_float64"] > 1e-9:
        raise SystemExit(f"{family}: the oracle at G = 1 or below W is not plain attention: {differences}")
    if differences["g1_vs_transformers_float32"] > 1e-5:
        raise SystemExit(f"{family}: the oracle at G = 1 is {differences['g1_vs_transformers_float32']} from transformers float32")
    return differences


def self_extend_run(model, tokens):
    """Self-Extend logits of the prompt, then greedy tokens, recomputing the whole sequence each step."""
    with self_extended(model, GROUP_SIZE, NEIGHBOR_WINDOW):
        prompt_logits = logits_of(model, tokens)
        sequence = list(tokens)
        gaps = []
        for _ in range(GENERATED_TOKENS):
            last = logits_of(model, sequence)[-1]
            top = torch.topk(last, 2).values
            gaps.append(float(top[0] - top[1]))
            sequence.append(int(last.argmax()))
    return prompt_logits, sequence[len(tokens) :], gaps


def prompt_tokens(tokenizer_path, text_path):
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokens = tokenizer.encode(text_path.read_text()).ids
    if tokens[0] != 1 or 1 in tokens[1:PROMPT_LENGTH]:
        raise SystemExit(f"{tokenizer_path}: expected exactly one BOS (id 1) at the start of the encoded text")
    if len(tokens) < PROMPT_LENGTH:
        raise SystemExit(f"{text_path}: {len(tokens)} tokens, fewer than the {PROMPT_LENGTH} the prompt needs")
    return tokens[:PROMPT_LENGTH]


def largest_relative_position(length, group_size, window):
    return (length - 1) // group_size + window - window // group_size


def oracle_for(family, models_root, text_path):
    model32 = AutoModelForCausalLM.from_pretrained(models_root / family, attn_implementation="eager").eval()
    # transformers' eager attention takes its softmax in float32 whatever the model's dtype; sdpa stays
    # in float64, so the G = 1 comparison below can be tight.
    model64 = AutoModelForCausalLM.from_pretrained(models_root / family, attn_implementation="sdpa").eval().double()
    if model64.config.max_position_embeddings != TRAINED_CONTEXT:
        raise SystemExit(f"{family}: max_position_embeddings {model64.config.max_position_embeddings}, expected {TRAINED_CONTEXT}")
    tokens = prompt_tokens(models_root / family / "tokenizer.json", text_path)
    checks = check_plain_equivalence(family, model64, model32, tokens[:200])
    logits_difference, module_difference = check_relative_form(family, model64, tokens)
    checks["two_level_vs_relative_form_float64_logits"] = logits_difference
    checks["two_level_vs_relative_form_float64_layer0_attention"] = module_difference

    plain_last = logits_of(model64, tokens)[-1]
    prompt_logits, generated, gaps = self_extend_run(model64, tokens)
    # The same Self-Extend in float32: how far plain fp32 arithmetic lands from the float64 oracle,
    # a floor for the tolerance an fp32 graph can be held to, and whether its greedy tokens agree.
    prompt_logits32, generated32, _ = self_extend_run(model32, tokens)
    float32_difference = max(float((prompt_logits32[p].double() - prompt_logits[p]).abs().max()) for p in STORED_POSITIONS)
    float32_same_tokens = generated32 == generated
    print(f"{family}: Self-Extend in float32 vs the float64 oracle: largest |logit difference| {float32_difference:.2e} "
          f"at the stored positions, greedy tokens {'identical' if float32_same_tokens else 'DIFFERENT'}")
    # The longest sequence run is the prompt plus all but the last generated token.
    longest_run = PROMPT_LENGTH + GENERATED_TOKENS - 1
    largest = largest_relative_position(longest_run, GROUP_SIZE, NEIGHBOR_WINDOW)
    if largest >= TRAINED_CONTEXT:
        raise SystemExit(f"G = {GROUP_SIZE}, W = {NEIGHBOR_WINDOW}: largest relative position {largest} >= L = {TRAINED_CONTEXT}")
    measured = int(relative_positions(longest_run, GROUP_SIZE, NEIGHBOR_WINDOW).tril().max())
    if measured != largest:
        raise SystemExit(f"largest relative position: formula {largest}, position map {measured}")
    print(f"{family}: G = {GROUP_SIZE}, W = {NEIGHBOR_WINDOW}, longest run {longest_run} tokens, largest relative position "
          f"floor({longest_run - 1}/{GROUP_SIZE}) + {NEIGHBOR_WINDOW} - {NEIGHBOR_WINDOW}/{GROUP_SIZE} = {largest} < L = {TRAINED_CONTEXT}; "
          f"smallest greedy top-1/top-2 gap {min(gaps):.4f}")
    return {
        "family": family,
        "model": f"tools/onnx-exports/make_models.py {family} (seeded, random)",
        "trained_context": TRAINED_CONTEXT,
        "group_size": GROUP_SIZE,
        "neighbor_window": NEIGHBOR_WINDOW,
        "largest_relative_position": largest,
        "largest_relative_position_arithmetic": f"floor(({longest_run} - 1) / {GROUP_SIZE}) + {NEIGHBOR_WINDOW} - {NEIGHBOR_WINDOW} / {GROUP_SIZE} = {largest} < {TRAINED_CONTEXT}",
        "precision": "float64, except the RoPE angle table and transformers' RMSNorm (float32, as in the exports); logits rounded to 7 significant digits",
        "bos": "the prompt starts with BOS (id 1), added by tokenizer.json's post-processor; no other BOS",
        "prompt_source": f"first {PROMPT_LENGTH} tokens of ../shared/models/tinystories_val_256k.txt (whole file encoded with tokenizer.json)",
        "prompt_tokens": tokens,
        "logits_positions": list(STORED_POSITIONS),
        "logits": {str(position): round_list(prompt_logits[position]) for position in STORED_POSITIONS},
        "plain_logits_last_prompt_position": round_list(plain_last),
        "greedy_tokens": generated,
        "greedy_top1_top2_gaps": [float(f"{gap:.{SIGNIFICANT_DIGITS}g}") for gap in gaps],
        "smallest_greedy_top1_top2_gap": float(f"{min(gaps):.{SIGNIFICANT_DIGITS}g}"),
        "plain_equivalence_checks": {name: float(f"{value:.3g}") for name, value in checks.items()},
        "float32_self_extend_vs_oracle": {"max_abs_logit_difference": float(f"{float32_difference:.3g}"), "same_greedy_tokens": float32_same_tokens},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, type=pathlib.Path, help="output folder of make_models.py")
    parser.add_argument("--out", required=True, type=pathlib.Path)
    default_text = pathlib.Path(__file__).resolve().parents[3] / "shared" / "models" / "tinystories_val_256k.txt"
    parser.add_argument("--text", type=pathlib.Path, default=default_text)
    parser.add_argument("--families", default=",".join(FAMILIES))
    arguments = parser.parse_args()
    families = arguments.families.split(",")
    for family in families:
        if family not in FAMILIES:
            raise SystemExit(f"--families {family}: expected some of {', '.join(FAMILIES)}")
        if not (arguments.models / family / "config.json").is_file():
            raise SystemExit(f"--models {arguments.models}: no {family}/config.json there (run make_models.py first)")
    if not arguments.text.is_file():
        raise SystemExit(f"--text {arguments.text}: no such file")
    torch.use_deterministic_algorithms(True)
    check_position_map()
    arguments.out.mkdir(parents=True, exist_ok=True)
    for family in families:
        record = oracle_for(family, arguments.models, arguments.text)
        # Written whole to a temporary name, then renamed: a stopped run never leaves half a file.
        target = arguments.out / f"{family}.json"
        temporary = target.with_suffix(".json.partial")
        temporary.write_text(json.dumps(record, separators=(",", ":")) + "\n")
        temporary.replace(target)
        print(f"wrote {target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
