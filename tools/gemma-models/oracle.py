"""Independent Self-Extend oracle for Gemma, Gemma 2 and Gemma 3: transformers' own models, attention replaced.

Written from ../shared/docs/self-extend-spec.md (the paper's two-level mapping), not from LongLM's
code nor from this repository's TypeScript. For a whole sequence without a cache, query i and key
j <= i use
  global layers (every Gemma layer; Gemma 2's "full_attention" layers), Self-Extend:
    neighbor level (i - j < W): RoPE at i for the query and at j for the key;
    group level (i - j >= W):   RoPE at floor(i/G) + W - W/G for the query and at floor(j/G) for the key;
  Gemma 2's local layers ("sliding_attention"): RoPE at i and j, and only keys with i - j < window
    (the window is at most L, so these layers never see a distance they were not trained on).
Gemma 3 as Gemma 2, plus transformers' own per-head q_norm/k_norm before RoPE, and each layer's own
RoPE: rope_local_base_freq without scaling on local layers, rope_theta with the config's linear
scaling (frequencies divided by the factor, as transformers does) on global layers.
Scores are q.k times Gemma's scale (1/sqrt(head_dim) for Gemma, 1/sqrt(query_pre_attn_scalar) for
Gemma 2), then Gemma 2's soft-cap cap * tanh(score / cap), then one causal softmax over the merged
scores. Everything else (scaled embeddings, (1 + w) RMSNorms, post-norms, GeGLU, tied LM head,
final soft-cap) is transformers' own code. Float64, except the RoPE angle table (float32, as
transformers computes it) and transformers' Gemma RMSNorm (float32 whatever the model's dtype).

Checks, printed, before any data is written (the script stops if one fails):
  - G = 1 reproduces transformers' unmodified forward over 200 tokens (> the sliding window, > L):
    this pins the oracle's local-window edge, scale and soft-cap to transformers' own code;
  - the same with the window edge moved by one (i - j <= window) does NOT reproduce it, so the
    check above really covers the edge;
  - a sequence shorter than W at G = 8 reproduces transformers' forward;
  - on global layers, the two-level form equals the relative form (query unrotated, key j rotated
    by -r(i, j) with r written from the spec's one-level formula).

Usage: python oracle.py --models /tmp/gemma-hf --out ../../packages/reference/test/fixtures/gemma
"""

import argparse
import contextlib
import json
import math
import pathlib

import sentencepiece
import torch
import transformers
from transformers import AutoModelForCausalLM

FAMILIES = ("gemma", "gemma2", "gemma3")
TRAINED_CONTEXT = 128
GROUP_SIZE = 8
NEIGHBOR_WINDOW = 32
SELF_EXTEND_PROMPT_LENGTH = 4 * TRAINED_CONTEXT
SELF_EXTEND_GENERATED = 128
SELF_EXTEND_POSITIONS = (127, 255, 383, SELF_EXTEND_PROMPT_LENGTH - 1)
# Plain run (G = 1): a prompt longer than Gemma 2's window (48), whose greedy tokens keep every
# position below L; logits at the window's edge (query 47 sees key 0, query 48 no longer does).
PLAIN_PROMPT_LENGTH = 96
PLAIN_GENERATED = TRAINED_CONTEXT - PLAIN_PROMPT_LENGTH
PLAIN_POSITIONS = (31, 47, 48, 49, PLAIN_PROMPT_LENGTH - 1)
CHECK_LENGTH = 200
SIGNIFICANT_DIGITS = 8


def rotation_table(positions, head_dim, theta, angle_dtype=torch.float32, linear_factor=1.0):
    """cos and sin of position x frequency in transformers' half-split layout (pairs d, d + head_dim/2).

    Computed in float32 like transformers' rotary embedding, so G = 1 can match it to float64 rounding.
    A linear RoPE scaling factor divides the frequencies, as transformers' "linear" rope_type does.
    """
    inverse_frequency = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).to(angle_dtype) / head_dim)
    if linear_factor != 1.0:
        inverse_frequency = inverse_frequency / linear_factor
    angles = positions.to(angle_dtype)[..., None] * inverse_frequency
    return torch.cat([angles.cos(), angles.cos()], dim=-1), torch.cat([angles.sin(), angles.sin()], dim=-1)


def rotate_half(states):
    half = states.shape[-1] // 2
    return torch.cat([-states[..., half:], states[..., :half]], dim=-1)


def rotate(states, positions, rope, angle_dtype=torch.float32):
    theta, linear_factor = rope
    cos, sin = rotation_table(positions, states.shape[-1], theta, angle_dtype, linear_factor)
    return states * cos.to(states.dtype) + rotate_half(states) * sin.to(states.dtype)


def relative_positions(length, group_size, window):
    """The spec's one-level map r(i, j), written from its formula."""
    i = torch.arange(length)[:, None]
    j = torch.arange(length)[None, :]
    grouped = torch.div(i, group_size, rounding_mode="floor") - torch.div(j, group_size, rounding_mode="floor") + window - window // group_size
    return torch.where(i - j < window, i - j, grouped)


def score_scale(config):
    if config.model_type in ("gemma2", "gemma3_text"):
        return config.query_pre_attn_scalar**-0.5
    return config.head_dim**-0.5


def is_local(config, layer_index):
    return config.model_type in ("gemma2", "gemma3_text") and config.layer_types[layer_index] == "sliding_attention"


def rope_of(config, layer_index):
    """(base, linear factor) of a layer's RoPE: Gemma 3's local layers use rope_local_base_freq and
    no scaling; its global layers rope_theta and the config's linear scaling; other models rope_theta."""
    if config.model_type == "gemma3_text":
        if is_local(config, layer_index):
            return config.rope_local_base_freq, 1.0
        scaling = config.rope_scaling or {}
        if scaling and scaling.get("rope_type", scaling.get("type")) != "linear":
            raise SystemExit(f"rope_scaling {scaling}: only linear scaling is written here")
        return config.rope_theta, float(scaling.get("factor", 1.0))
    return config.rope_theta, 1.0


def project(module, config, hidden_states):
    batch, length, _ = hidden_states.shape

    def heads(states):
        return states.view(batch, length, -1, config.head_dim).transpose(1, 2)

    query, key, value = heads(module.q_proj(hidden_states)), heads(module.k_proj(hidden_states)), heads(module.v_proj(hidden_states))
    if config.model_type == "gemma3_text":
        # Gemma 3 normalises each query and key head (transformers' own (1 + w) RMSNorm) before RoPE.
        query, key = module.q_norm(query), module.k_norm(key)
    # Grouped-query attention: query head h reads key/value head h // (heads per key/value head).
    repeat = config.num_attention_heads // config.num_key_value_heads
    return query, key.repeat_interleave(repeat, dim=1), value.repeat_interleave(repeat, dim=1)


def finish(module, config, scores, value, visible):
    """Soft-cap (Gemma 2), mask, softmax, weighted values, output projection."""
    cap = getattr(config, "attn_logit_softcapping", None)
    if cap is not None:
        scores = cap * torch.tanh(scores / cap)
    scores = scores.masked_fill(~visible, float("-inf"))
    batch, _, length, _ = scores.shape
    output = (torch.softmax(scores, dim=-1) @ value).transpose(1, 2).reshape(batch, length, -1)
    return module.o_proj(output)


def gemma_attention(module, config, layer_index, hidden_states, group_size, window, angle_dtype=torch.float32, window_edge_inclusive=False):
    query, key, value = project(module, config, hidden_states)
    length = query.shape[2]
    index = torch.arange(length)
    distance = index[:, None] - index[None, :]
    rope = rope_of(config, layer_index)
    exact_scores = rotate(query, index, rope, angle_dtype) @ rotate(key, index, rope, angle_dtype).transpose(-1, -2)
    if is_local(config, layer_index):
        # Local layer: exact positions, keys within the window only.
        inside = distance <= config.sliding_window if window_edge_inclusive else distance < config.sliding_window
        return finish(module, config, exact_scores * score_scale(config), value, (distance >= 0) & inside)
    group_query = torch.div(index, group_size, rounding_mode="floor") + window - window // group_size
    group_key = torch.div(index, group_size, rounding_mode="floor")
    group_scores = rotate(query, group_query, rope, angle_dtype) @ rotate(key, group_key, rope, angle_dtype).transpose(-1, -2)
    scores = torch.where(distance < window, exact_scores, group_scores) * score_scale(config)
    return finish(module, config, scores, value, distance >= 0)


def relative_form_attention(module, config, layer_index, hidden_states, group_size, window, angle_dtype=torch.float64, window_edge_inclusive=False):
    """Global-layer Self-Extend written the other way the spec allows: the query stays unrotated and
    key j is rotated by -r(i, j). Shares no position code with gemma_attention."""
    if is_local(config, layer_index):
        return gemma_attention(module, config, layer_index, hidden_states, group_size, window, angle_dtype)
    query, key, value = project(module, config, hidden_states)
    length = query.shape[2]
    theta, linear_factor = rope_of(config, layer_index)
    cos, sin = rotation_table(-relative_positions(length, group_size, window), config.head_dim, theta, angle_dtype, linear_factor)
    keys_for_query = key[:, :, None, :, :] * cos.to(key.dtype) + rotate_half(key)[:, :, None, :, :] * sin.to(key.dtype)
    scores = torch.einsum("bhid,bhijd->bhij", query, keys_for_query) * score_scale(config)
    index = torch.arange(length)
    return finish(module, config, scores, value, index[:, None] >= index[None, :])


@contextlib.contextmanager
def self_extended(model, group_size, window, attention=gemma_attention, angle_dtype=torch.float32, window_edge_inclusive=False):
    """Replaces every attention module's forward for the duration; restores transformers' on exit."""
    config = model.config
    modules = [layer.self_attn for layer in model.model.layers]
    for layer_index, module in enumerate(modules):

        def forward(hidden_states, *_, module=module, layer_index=layer_index, **__):
            return attention(module, config, layer_index, hidden_states, group_size, window, angle_dtype, window_edge_inclusive), None

        module.forward = forward
    try:
        yield model
    finally:
        for module in modules:
            del module.forward


@contextlib.contextmanager
def float64_softmax():
    """transformers' eager attention (the only one that soft-caps) takes its softmax in float32
    whatever the model's dtype; for a float64 comparison, keep float64 inputs in float64."""
    original = torch.nn.functional.softmax

    def softmax(input, dim=None, _stacklevel=3, dtype=None):
        if input.dtype == torch.float64 and dtype == torch.float32:
            dtype = None
        return original(input, dim=dim, _stacklevel=_stacklevel, dtype=dtype)

    torch.nn.functional.softmax = softmax
    try:
        yield
    finally:
        torch.nn.functional.softmax = original


def logits_of(model, tokens):
    with torch.no_grad():
        return model(torch.tensor([tokens]), use_cache=False).logits[0]


def largest(a, b):
    return float((a.double() - b.double()).abs().max())


def checks_for(family, model64, model32, tokens):
    """G = 1 and short sequences against transformers; the window edge; the relative form."""
    sample = tokens[:CHECK_LENGTH]
    with float64_softmax():
        transformers64 = logits_of(model64, sample)
    transformers64_float32_softmax = logits_of(model64, sample)
    transformers32 = logits_of(model32, sample)
    with self_extended(model64, 1, NEIGHBOR_WINDOW):
        group_one = logits_of(model64, sample)
    with self_extended(model64, 1, NEIGHBOR_WINDOW, window_edge_inclusive=True):
        edge_moved = logits_of(model64, sample)
    short = sample[: NEIGHBOR_WINDOW - 1]
    with self_extended(model64, GROUP_SIZE, NEIGHBOR_WINDOW):
        short_extended = logits_of(model64, short)
    with self_extended(model64, GROUP_SIZE, NEIGHBOR_WINDOW, angle_dtype=torch.float64):
        two_level = logits_of(model64, tokens)
    with self_extended(model64, GROUP_SIZE, NEIGHBOR_WINDOW, relative_form_attention, torch.float64):
        relative_form = logits_of(model64, tokens)
    checks = {
        "g1_vs_transformers_float64": largest(group_one, transformers64),
        "g1_vs_transformers_float64_with_its_float32_softmax": largest(group_one, transformers64_float32_softmax),
        "g1_vs_transformers_float32": largest(group_one, transformers32),
        "g1_with_window_edge_inclusive_vs_transformers_float64": largest(edge_moved, transformers64),
        "shorter_than_window_g8_vs_transformers_float64": largest(short_extended, transformers64[: len(short)]),
        "two_level_vs_relative_form_float64": largest(two_level, relative_form),
    }
    for name, value in checks.items():
        print(f"check {family}: {name} {value:.2e}")
    exact = ("g1_vs_transformers_float64", "shorter_than_window_g8_vs_transformers_float64", "two_level_vs_relative_form_float64")
    for name in exact:
        if checks[name] > 1e-9:
            raise SystemExit(f"{family}: {name} = {checks[name]}, expected float64 rounding (< 1e-9)")
    if checks["g1_vs_transformers_float32"] > 1e-4:
        raise SystemExit(f"{family}: the oracle at G = 1 is {checks['g1_vs_transformers_float32']} from transformers float32")
    if family in ("gemma2", "gemma3") and checks["g1_with_window_edge_inclusive_vs_transformers_float64"] < 1e-3:
        raise SystemExit(f"{family}: moving the window edge by one changed nothing: the G = 1 check does not cover the edge")
    return checks


def greedy_run(model, tokens, group_size, window, generated, positions, attention=gemma_attention):
    """Logits of the prompt at `positions`, then greedy tokens, recomputing the whole sequence each step."""
    with self_extended(model, group_size, window, attention):
        prompt_logits = logits_of(model, tokens)
        sequence = list(tokens)
        gaps = []
        for _ in range(generated):
            last = logits_of(model, sequence)[-1]
            top = torch.topk(last, 2).values
            gaps.append(float(top[0] - top[1]))
            sequence.append(int(last.argmax()))
    # `last` is the logit row of the last greedy step, at position len(sequence) - 2 (its token is never fed).
    return {position: prompt_logits[position] for position in positions}, sequence[len(tokens) :], gaps, last


def rounded(values):
    return [float(f"{value:.{SIGNIFICANT_DIGITS}g}") for value in values.tolist()]


def run_record(model64, model32, tokens, group_size, generated, positions, window=NEIGHBOR_WINDOW, attention=gemma_attention):
    logits, greedy, gaps, last_step = greedy_run(model64, tokens, group_size, window, generated, positions, attention)
    logits32, greedy32, _, last_step32 = greedy_run(model32, tokens, group_size, window, generated, positions, attention)
    float32_difference = max([largest(logits32[p], logits[p]) for p in positions] + [largest(last_step32, last_step)])
    longest_run = len(tokens) + generated - 1
    record = {
        "group_size": group_size,
        "neighbor_window": window,
        "prompt_tokens": tokens,
        "logits": {str(position): rounded(logits[position]) for position in positions},
        "greedy_tokens": greedy,
        # The decode path's logits: the row the last greedy token was chosen from.
        "last_greedy_step": {"position": len(tokens) + generated - 2, "logits": rounded(last_step)},
        "greedy_top1_top2_gaps": [float(f"{gap:.4g}") for gap in gaps],
        "smallest_greedy_top1_top2_gap": float(f"{min(gaps):.4g}"),
        "largest_relative_position": (longest_run - 1) // group_size + window - window // group_size
        if group_size > 1
        else longest_run - 1,
        "float32_vs_oracle": {"max_abs_logit_difference": float(f"{float32_difference:.3g}"), "same_greedy_tokens": greedy32 == greedy},
    }
    print(f"  G = {group_size}, W = {window}: prompt {len(tokens)}, {generated} greedy tokens, smallest top-1/top-2 gap {min(gaps):.4f} "
          f"(step {gaps.index(min(gaps))}); float32 vs float64 {float32_difference:.2e}, greedy {'identical' if greedy32 == greedy else 'DIFFERENT'}")
    if record["largest_relative_position"] >= TRAINED_CONTEXT:
        raise SystemExit(f"G = {group_size}: largest relative position {record['largest_relative_position']} >= L = {TRAINED_CONTEXT}")
    return record


def prompt_tokens(sentencepiece_path, text_path):
    processor = sentencepiece.SentencePieceProcessor(model_file=str(sentencepiece_path))
    # BOS (id 1), as Gemma files add it, then the text; no other BOS can come from encoding text.
    tokens = [processor.bos_id()] + processor.encode(text_path.read_text()[:20000])
    if len(tokens) < SELF_EXTEND_PROMPT_LENGTH:
        raise SystemExit(f"{text_path}: {len(tokens)} tokens in its first 20000 characters, fewer than {SELF_EXTEND_PROMPT_LENGTH}")
    return tokens[:SELF_EXTEND_PROMPT_LENGTH]


def oracle_for(family, models_root, text_path):
    folder = models_root / family
    # Eager attention is the only implementation that soft-caps Gemma 2's scores.
    model32 = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()
    model64 = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval().double()
    config = model64.config
    if config.max_position_embeddings != TRAINED_CONTEXT:
        raise SystemExit(f"{family}: max_position_embeddings {config.max_position_embeddings}, expected {TRAINED_CONTEXT}")
    tokens = prompt_tokens(folder / "tokenizer.model", text_path)
    checks = checks_for(family, model64, model32, tokens)
    self_extend = run_record(model64, model32, tokens, GROUP_SIZE, SELF_EXTEND_GENERATED, SELF_EXTEND_POSITIONS)
    plain = run_record(model64, model32, tokens[:PLAIN_PROMPT_LENGTH], 1, PLAIN_GENERATED, PLAIN_POSITIONS)
    # Gemma 2 with W = the sliding window: the neighbor window covers every distance a local layer
    # sees, the case llama.cpp can run (its local layers measure the window on cell positions, which
    # stay exact only within W; packages/llama-cpp/src/llama-cpp-capabilities.ts).
    wide_window = (
        {"self_extend_window_covers_local_layers": run_record(
            model64, model32, tokens, GROUP_SIZE, SELF_EXTEND_GENERATED, SELF_EXTEND_POSITIONS, window=config.sliding_window
        )}
        if family in ("gemma2", "gemma3")
        else {}
    )
    return {
        "family": family,
        "model": f"tools/gemma-models/make_models.py {family} (seeded, random), converted by llama.cpp's convert_hf_to_gguf.py to {family}.gguf",
        "trained_context": TRAINED_CONTEXT,
        "sliding_window": getattr(config, "sliding_window", None),
        "local_layers": [is_local(config, layer) for layer in range(config.num_hidden_layers)],
        "precision": "float64, except the RoPE angle table and transformers' RMSNorm (float32); logits rounded to 8 significant digits",
        "prompt_source": "BOS (id 1) + the start of ../shared/models/tinystories_val_256k.txt encoded by tok512.model (sentencepiece)",
        "self_extend": self_extend,
        "plain": plain,
        **wide_window,
        "checks": {name: float(f"{value:.3g}") for name, value in checks.items()},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "sentencepiece": sentencepiece.__version__},
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
    arguments.out.mkdir(parents=True, exist_ok=True)
    for family in families:
        print(f"{family}:")
        record = oracle_for(family, arguments.models, arguments.text)
        # Written whole to a temporary name, then renamed: a stopped run never leaves half a file.
        target = arguments.out / f"{family}-oracle.json"
        temporary = target.with_suffix(".json.partial")
        temporary.write_text(json.dumps(record, separators=(",", ":")) + "\n")
        temporary.replace(target)
        print(f"wrote {target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
