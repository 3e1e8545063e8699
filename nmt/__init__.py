"""nmt: classic RNN encoder-decoders for machine translation, behind one CLI."""

__version__ = "0.1.0"
