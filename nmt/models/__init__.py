"""Encoder-decoder models; they work on tensors of ids, never on text."""
