"""Writes a vocabulary-only GGUF for a Hugging Face byte-level BPE tokenizer with llama.cpp's gguf-py.

Usage: write-bpe-vocabulary-gguf.py TOKENIZER_FOLDER OUTPUT.gguf PRE_TOKENIZER ARCHITECTURE

TOKENIZER_FOLDER holds tokenizer.json and tokenizer_config.json; the vocabulary keys are written by
gguf-py/bpe_vocabulary.py (which says whose choices it follows). llama.cpp refuses a model without
hyperparameters even when it only reads the vocabulary, so a tiny set is written.
"""

import json
import sys
from pathlib import Path

import gguf

sys.path.insert(0, str(Path(__file__).parent / "gguf-py"))
from bpe_vocabulary import add_bpe_vocabulary  # noqa: E402
from vocabulary_only import add_placeholder_hyperparameters  # noqa: E402


def main() -> None:
    folder, output, pre, architecture = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    writer = gguf.GGUFWriter(output, architecture)
    writer.add_name(f"{folder.name} vocabulary")
    add_placeholder_hyperparameters(writer)
    writer.add_rope_freq_base(500000.0)
    summary = add_bpe_vocabulary(writer, folder, pre)
    writer.add_vocab_size(summary["tokens"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(json.dumps(summary))


main()
