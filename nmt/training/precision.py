"""Mixed precision: the autocast context and the gradient scaler.

``bf16`` runs the forward pass under autocast in bfloat16 (CUDA and CPU);
``fp16`` in float16 with a :class:`torch.amp.GradScaler` that scales the loss
so that small gradients do not vanish.  Weights, optimizer state and the loss
itself stay in float32.  ``auto`` is bf16 on a device with bfloat16 arithmetic
(a CUDA GPU that supports it, a CPU with AVX512-BF16 or AMX) and fp32
elsewhere, where bf16 would be emulated and slower.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import torch

from nmt.config import Precision

DTYPES = {Precision.bf16: torch.bfloat16, Precision.fp16: torch.float16}


def resolve_precision(precision: Precision, device: torch.device) -> Precision:
    """``precision`` with ``auto`` made concrete for ``device``."""
    if precision != Precision.auto:
        return precision
    return Precision.bf16 if bf16_native(device) else Precision.fp32


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively (not by emulation)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return bool(
            torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
        )
    return False


def autocast(precision: Precision, device: torch.device) -> Any:
    """The context the training forward pass runs in."""
    if precision == Precision.fp32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[precision])


def build_grad_scaler(precision: Precision, device: torch.device) -> torch.amp.GradScaler:
    """Enabled for fp16 only (bf16 has float32's exponent range and needs none)."""
    return torch.amp.GradScaler(device.type, enabled=precision == Precision.fp16)


@functools.cache
def cpu_fp16_supported() -> bool:
    """Whether float16 autocast runs an LSTM on this CPU (oneDNN often has no kernel)."""
    lstm = torch.nn.LSTM(4, 4, batch_first=True)
    try:
        with torch.autocast(device_type="cpu", dtype=torch.float16):
            lstm(torch.zeros(1, 2, 4))
    except RuntimeError:
        return False
    return True
