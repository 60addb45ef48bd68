"""What a vocabulary-only GGUF needs besides its vocabulary: llama.cpp refuses a model without
hyperparameters even when it only reads the vocabulary, so a tiny placeholder set is written."""

import gguf


def add_placeholder_hyperparameters(writer: gguf.GGUFWriter) -> None:
    writer.add_context_length(8192)
    writer.add_embedding_length(64)
    writer.add_block_count(1)
    writer.add_feed_forward_length(128)
    writer.add_head_count(4)
    writer.add_head_count_kv(4)
    writer.add_layer_norm_rms_eps(1e-5)
