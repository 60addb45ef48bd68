"""Train our tokenizer on the TinyStories training text and tokenise it for train.py.

  python3 tools/demo-model/build_data.py --data .train-data --vocab-size 1024

Reads the *training* files listed in FILES from --data (copies of ../shared/data/tinystories/;
never tinystories_val_256k.txt, which is kept for evaluation, and not tinystoriesV2_valid_head.txt,
which is V2 validation text). Writes into --data:
  tok1024.bin          the vocabulary in llama2.c tok512.bin layout
  train.u16 / val.u16  token ids (uint16 little-endian), each story as <s> + its tokens;
                       val is the last 1% of stories (in the shuffled order), for monitoring only
  tokenizer-sample.json  texts and their ids, for tokenizer-check.ts (the TypeScript encoder)
"""
from __future__ import annotations

import argparse
import json
import os
import random
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptok  # noqa: E402

FILES = [
    "tinystories_v1_train_head.txt",
    "tinystories_v1_train_9k-10k.txt",
    "tinystoriesV2_train_head.txt",
    "tinystories_train_subset_shuffled.txt",
]


def read_stories(folder: str) -> list[str]:
    stories = []
    for name in FILES:
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            text = f.read()
        for story in text.split("\n<|endoftext|>\n"):
            story = story.strip()
            if story and story != "<|endoftext|>":
                stories.append(story)
    return stories


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=".train-data")
    parser.add_argument("--vocab-size", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()

    t0 = time.time()
    stories = read_stories(args.data)
    random.Random(args.seed).shuffle(stories)
    n_val = max(1, len(stories) // 100)
    train_stories, val_stories = stories[:-n_val], stories[-n_val:]
    print(f"{len(stories)} stories ({len(train_stories)} train, {len(val_stories)} val)", flush=True)

    tok = sptok.train(train_stories, args.vocab_size)
    assert tok.size == args.vocab_size, tok.size
    tok_path = os.path.join(args.data, f"tok{args.vocab_size}.bin")
    tok.save_llama2c(tok_path)
    # round trip through the file, so the ids below are exactly what the file encodes
    tok = sptok.Tokenizer.load_llama2c(tok_path)
    print(f"vocabulary: {tok.size} pieces -> {tok_path} ({time.time() - t0:.1f}s)", flush=True)

    for name, part in (("train", train_stories), ("val", val_stories)):
        ids: list[int] = []
        for story in part:
            ids.extend(tok.encode(story, bos=True))
        with open(os.path.join(args.data, f"{name}.u16"), "wb") as f:
            f.write(struct.pack(f"<{len(ids)}H", *ids))
        n_bytes = sum(len(s.encode("utf-8")) for s in part)
        print(f"{name}: {len(ids)} tokens, {n_bytes / len(ids):.2f} bytes/token ({time.time() - t0:.1f}s)", flush=True)

    filler = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
    sample = val_stories[:40] + [
        filler * 3 + " The pass key is 48213. Remember it. 48213 is the pass key. " + filler
        + " What is the pass key? The pass key is 48213.",
        "Double  spaces,\ttabs, caf\u00e9, \u201cquotes\u201d \u2014 and 123 digits\n\nnew lines \U0001F600.",
    ]
    with open(os.path.join(args.data, "tokenizer-sample.json"), "w", encoding="utf-8") as f:
        json.dump([{"text": s, "ids": tok.encode(s, bos=True)} for s in sample], f, ensure_ascii=False)
    print(f"done in {time.time() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    main()
