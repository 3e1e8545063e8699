"""Search over a model's output distributions; tensors and ids in, ids out."""
