"""Tokenise the held-out evaluation text exactly as @self-extend/reference's perplexity does
(joinBlocksAsOneDocument + one BOS), for train.py's PyTorch cross-check. Evaluation only: this
file is never training data.

  python3 tools/demo-model/tokenize_eval.py --tokenizer .train-data/tok1024.bin \
      --text ../shared/models/tinystories_val_256k.txt --out .train-data/eval-val256k.u16
"""
import argparse
import os
import re
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptok  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--tokenizer", required=True)
p.add_argument("--text", required=True)
p.add_argument("--out", required=True)
a = p.parse_args()
tok = sptok.Tokenizer.load_llama2c(a.tokenizer)
text = open(a.text, encoding="utf-8").read()
doc = "\n".join(b.strip() for b in re.split(r"\n[ \t]*\n", text) if b.strip())
ids = tok.encode(doc, bos=True)
with open(a.out, "wb") as f:
    f.write(struct.pack(f"<{len(ids)}H", *ids))
print(f"{len(ids)} tokens -> {a.out}")
