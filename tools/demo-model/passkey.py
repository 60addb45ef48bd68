"""Synthetic passkey text in the format of the evaluation issue (Mohtashami & Jaggi 2023, used by
the Self-Extend paper): a repeated filler, the key line at some depth, and the question.

Training examples vary what an evaluator might vary (separators, an optional introduction,
where the filler cycle starts, a key line that cuts a filler sentence) so the model learns to copy
the key rather than one exact layout. Everything fits in the trained window; the model never sees
a sequence longer than 256 tokens.
"""
from __future__ import annotations

import random

FILLER = ["The grass is green.", "The sky is blue.", "The sun is yellow.", "Here we go.", "There and back again."]
INTRO = ("There is an important info hidden inside a lot of irrelevant text. "
         "Find it and memorize them. I will quiz you about the important information there.")
QUESTION = "What is the pass key? The pass key is"


def key_line(key: int) -> str:
    return f"The pass key is {key}. Remember it. {key} is the pass key."


def filler_text(count: int, phase: int = 0) -> str:
    return " ".join(FILLER[(phase + i) % len(FILLER)] for i in range(count))


def training_example(tok, rng: random.Random, target_len: int, max_len: int):
    """Returns (ids with BOS, index of the first answer digit). len(ids) <= max_len."""
    key = rng.randint(10000, 99999)
    sep = " " if rng.random() < 0.75 else "\n"
    intro = INTRO if rng.random() < 0.25 else ""
    phase = 0 if rng.random() < 0.7 else rng.randrange(len(FILLER))
    restart = rng.random() < 0.5
    depth = rng.random()
    cut_words = rng.randint(1, 3) if rng.random() < 0.15 else 0
    count = max(0, (target_len - 45) // 5)
    while True:
        before = int(round(depth * count))
        after = count - before
        pre = filler_text(before, phase)
        if cut_words and before > 0:
            words = pre.split(" ")
            pre = " ".join(words[: max(1, len(words) - cut_words)])
        post = filler_text(after, 0 if restart else phase + before)
        parts = [s for s in (intro, pre, key_line(key), post, QUESTION) if s]
        prompt = sep.join(parts)
        ids = tok.encode(prompt, bos=True)
        answer = tok.encode(prompt + f" {key}.", bos=True)
        if len(answer) <= max_len or count == 0:
            break
        count -= max(1, (len(answer) - max_len) // 5)
    assert answer[: len(ids)] == ids and len(answer) == len(ids) + 7, "chunk-invariant encoding"
    return answer, len(ids) + 1  # ids[len(ids)] is the "▁" token, then the five digits


def trial_key(seed: int, length: int, depth: float, trial: int) -> int:
    return random.Random(f"{seed}/{length}/{depth}/{trial}").randint(10000, 99999)


def eval_prompt_ids(tok, length: int, depth: float, key: int) -> list[int]:
    """Filler sentences around the key line (inserted at `depth` of the filler, on a sentence
    boundary), then the question; as many filler sentences as fit in `length` tokens."""
    def build(count):
        before = int(round(depth * count))
        parts = [s for s in (filler_text(before), key_line(key), filler_text(count - before, before), QUESTION) if s]
        return tok.encode(" ".join(parts), bos=True)

    count = max(0, (length - 40) // 5)
    ids = build(count)
    while len(ids) > length and count > 0:
        count -= 1
        ids = build(count)
    while True:
        more = build(count + 1)
        if len(more) > length:
            return ids
        count, ids = count + 1, more
