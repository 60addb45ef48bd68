"""Our own SentencePiece-style BPE vocabulary with byte fallback, in llama2.c's tok512.bin layout.

Layout of the vocabulary (ids):
  0 <unk>, 1 <s>, 2 </s>, 3..258 byte tokens <0x00>..<0xFF>, then merged pieces (score = -rank,
  so the earliest merge scores highest), then single characters (lower scores than every merge).

Segmentation is the algorithm of llama2.c's run.c and of packages/models/src/tokenizer.ts, so the
TypeScript encoder reproduces it exactly: prepend a dummy space, turn spaces into U+2581, start from
single characters (a character that is not a piece becomes its UTF-8 byte tokens, which never
merge), then repeatedly merge the adjacent pair whose concatenation is a piece with the highest
score, leftmost first.

The trainer only learns pieces inside "chunks" (see CHUNK below): a run of ASCII letters with an
optional leading U+2581, or one other character with an optional leading U+2581. Digits never
merge (so a pass key is always one token per digit), and a piece never contains a newline. Because
no piece can span two chunks, encoding chunk by chunk (with a cache) gives the same ids as encoding
the whole text at once, which is what makes tokenising megabytes in Python fast.

Pure Python, no dependencies. Deterministic: ties between pair counts break on the pair's text.
"""
from __future__ import annotations

import re
import struct
from collections import Counter, defaultdict

SPACE = "\u2581"
CHUNK = re.compile(SPACE + r"?[A-Za-z]+|" + SPACE + r"?[^A-Za-z" + SPACE + r"\n]|" + SPACE + r"|\n")
N_SPECIAL = 3 + 256  # <unk>, <s>, </s>, 256 byte tokens


def normalize(text: str) -> str:
    """Dummy space prefix, spaces to U+2581 (run.c / tokenizer.ts)."""
    return SPACE + text.replace(" ", SPACE) if text else ""


def chunks(normalized: str) -> list[str]:
    out = CHUNK.findall(normalized)
    assert sum(map(len, out)) == len(normalized), "chunk pattern must cover the text"
    return out


def mergeable(symbol: str) -> bool:
    return not any(c.isdigit() for c in symbol) and "\n" not in symbol


def train(texts, vocab_size: int, min_char_count: int = 20, verbose: bool = True) -> "Tokenizer":
    """texts: iterable of documents (each encoded on its own, so each gets a dummy space)."""
    chunk_counts: Counter[str] = Counter()
    for text in texts:
        chunk_counts.update(chunks(normalize(text)))
    char_counts: Counter[str] = Counter()
    for chunk, count in chunk_counts.items():
        for c in chunk:
            char_counts[c] += count
    # Characters frequent enough get a piece; rarer ones fall back to bytes. Newline stays a byte
    # token (<0x0A>), as in tok512.bin.
    # Every printable ASCII character gets a piece (digits above all: a pass key is one token per
    # digit), and so does any other character seen at least min_char_count times.
    ascii_printable = {chr(b) for b in range(0x21, 0x7F)}
    chars = sorted(
        {c for c, n in char_counts.items() if n >= min_char_count and c != "\n"} | ascii_printable | {SPACE},
        key=lambda c: (-char_counts[c], c),
    )
    char_set = set(chars)
    n_merges = vocab_size - N_SPECIAL - len(chars)
    if n_merges <= 0:
        raise ValueError(f"vocab_size {vocab_size} leaves no room for merges ({len(chars)} characters)")

    # words: list of [symbols], counts; a symbol not in char_set is a placeholder that never merges.
    words: list[list[str]] = []
    counts: list[int] = []
    for chunk, count in sorted(chunk_counts.items()):
        if len(chunk) < 2:
            continue
        words.append([c if c in char_set else "\u0000" for c in chunk])
        counts.append(count)

    def pair_ok(a: str, b: str) -> bool:
        return a != "\u0000" and b != "\u0000" and mergeable(a) and mergeable(b)

    pair_counts: defaultdict[tuple[str, str], int] = defaultdict(int)
    where: defaultdict[tuple[str, str], set[int]] = defaultdict(set)
    for index, symbols in enumerate(words):
        for a, b in zip(symbols, symbols[1:]):
            if pair_ok(a, b):
                pair_counts[(a, b)] += counts[index]
                where[(a, b)].add(index)

    pieces: list[str] = []
    known = set(chars)
    while len(pieces) < n_merges and pair_counts:
        best = max(pair_counts.items(), key=lambda item: (item[1], item[0]))
        (a, b), count = best
        if count <= 0:
            break
        merged = a + b
        if merged not in known:
            known.add(merged)
            pieces.append(merged)
        for index in sorted(where.pop((a, b), ())):
            symbols = words[index]
            weight = counts[index]
            # remove old pairs of this word
            for x, y in zip(symbols, symbols[1:]):
                if pair_ok(x, y):
                    pair_counts[(x, y)] -= weight
                    if pair_counts[(x, y)] <= 0:
                        pair_counts.pop((x, y), None)
                    if (x, y) != (a, b):
                        where[(x, y)].discard(index)
            out: list[str] = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == a and symbols[i + 1] == b:
                    out.append(merged)
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            words[index] = out
            for x, y in zip(out, out[1:]):
                if pair_ok(x, y):
                    pair_counts[(x, y)] += weight
                    where[(x, y)].add(index)
        pair_counts.pop((a, b), None)
        if verbose and len(pieces) % 200 == 0:
            print(f"  merges {len(pieces)}/{n_merges}: {merged!r} x{count}", flush=True)

    vocab = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    scores = [0.0] * N_SPECIAL
    for rank, piece in enumerate(pieces):
        vocab.append(piece)
        scores.append(float(-rank))
    for rank, c in enumerate(chars):
        vocab.append(c)
        scores.append(float(-(len(pieces) + rank)))
    # Pad (only if merges ran out) with unreachable duplicates is not allowed; shrink instead.
    return Tokenizer(vocab, scores)


class Tokenizer:
    def __init__(self, vocab: list[str], scores: list[float]):
        self.vocab = vocab
        self.scores = scores
        self.ids: dict[str, int] = {}
        for i, piece in enumerate(vocab):
            if i >= N_SPECIAL or i == 0:
                self.ids.setdefault(piece, i)
        # byte tokens are looked up by value, never by text
        self.ids.pop("<unk>", None)
        self.cache: dict[str, list[int]] = {}

    @property
    def size(self) -> int:
        return len(self.vocab)

    def _encode_chunk(self, chunk: str) -> list[int]:
        cached = self.cache.get(chunk)
        if cached is not None:
            return cached
        texts: list[str] = []
        ids: list[int] = []
        for c in chunk:
            i = self.ids.get(c)
            if i is not None:
                texts.append(c)
                ids.append(i)
            else:
                for byte in c.encode("utf-8"):
                    texts.append(f"\u0000byte{byte}")
                    ids.append(3 + byte)
        while len(texts) > 1:
            best_score = None
            best_at = -1
            best_id = -1
            for at in range(len(texts) - 1):
                merged = self.ids.get(texts[at] + texts[at + 1])
                if merged is None:
                    continue
                score = self.scores[merged]
                if best_score is None or score > best_score:  # strict: leftmost wins ties
                    best_score, best_at, best_id = score, at, merged
            if best_score is None:
                break
            texts[best_at : best_at + 2] = [texts[best_at] + texts[best_at + 1]]
            ids[best_at : best_at + 2] = [best_id]
        if len(self.cache) < 2_000_000:
            self.cache[chunk] = ids
        return ids

    def encode(self, text: str, bos: bool = True) -> list[int]:
        out = [1] if bos else []
        for chunk in chunks(normalize(text)):
            out.extend(self._encode_chunk(chunk))
        return out

    def decode(self, ids) -> str:
        data = bytearray()
        first = True
        for i in ids:
            if i in (0, 1, 2):
                continue
            if 3 <= i < N_SPECIAL:
                data.append(i - 3)
                first = False
                continue
            piece = self.vocab[i].replace(SPACE, " ")
            if first and piece.startswith(" "):
                piece = piece[1:]
            first = False
            data.extend(piece.encode("utf-8"))
        return data.decode("utf-8", errors="replace")

    def save_llama2c(self, path: str) -> None:
        """tok512.bin layout: int32 max_token_length, then per token {f32 score, i32 len, bytes}."""
        records = []
        for i, piece in enumerate(self.vocab):
            if i == 1:
                text = "\n<s>\n"
            elif i == 2:
                text = "\n</s>\n"
            else:
                text = piece.replace(SPACE, " ")
            records.append((self.scores[i], text.encode("utf-8")))
        max_len = max(len(b) for _, b in records)
        with open(path, "wb") as f:
            f.write(struct.pack("<i", max_len))
            for score, data in records:
                f.write(struct.pack("<fi", score, len(data)))
                f.write(data)

    @staticmethod
    def load_llama2c(path: str) -> "Tokenizer":
        with open(path, "rb") as f:
            blob = f.read()
        (max_len,) = struct.unpack_from("<i", blob, 0)
        at = 4
        vocab, scores = [], []
        while at < len(blob):
            score, n = struct.unpack_from("<fi", blob, at)
            text = blob[at + 8 : at + 8 + n].decode("utf-8")
            at += 8 + n
            i = len(vocab)
            if i == 1:
                text = "<s>"
            elif i == 2:
                text = "</s>"
            elif i >= N_SPECIAL:
                text = text.replace(" ", SPACE)
            vocab.append(text)
            scores.append(score)
        return Tokenizer(vocab, scores)
