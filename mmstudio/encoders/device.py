"""Where encoders run: device choice, precision, batch sizes, out-of-memory back-off."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from mmstudio.core.errors import MmstudioError

log = logging.getLogger(__name__)

T = TypeVar("T")


def pick_device(preference: str = "auto") -> str:
    """"auto" → CUDA, then Apple MPS, then CPU; or check that the named device exists."""
    import torch

    preference = (preference or "auto").lower()
    if preference == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    if preference.startswith("cuda"):
        if not torch.cuda.is_available():
            raise MmstudioError(f"device {preference!r} asked for, but torch sees no CUDA GPU")
        _, _, ordinal = preference.partition(":")
        count = torch.cuda.device_count()
        if ordinal and (not ordinal.isdigit() or int(ordinal) >= count):
            raise MmstudioError(f"device {preference!r} asked for, but this machine has "
                                f"{count} CUDA GPU(s): cuda:0 to cuda:{count - 1}")
    if preference == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise MmstudioError("device 'mps' asked for, but this torch has no Apple MPS support")
    if preference != "cpu" and not preference.startswith(("cuda", "mps")):
        raise MmstudioError(f"unknown device {preference!r}; use auto, cpu, cuda, cuda:N or mps")
    return preference


def inference_dtype(device: str):
    """Half precision on GPUs (bf16 where supported, else fp16), float32 on the CPU."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32


def default_batch_size(device: str, kind: str) -> int:
    """A starting batch size; out-of-memory errors halve it at run time."""
    if device == "cpu":
        return {"text": 32, "image": 16, "audio": 8}.get(kind, 16)
    return {"text": 256, "image": 128, "audio": 64}.get(kind, 64)


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _release_cached_memory(device: str) -> None:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif device == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()


def run_in_batches(
    encode: Callable[[Sequence[T]], dict[str, np.ndarray]],
    items: Sequence[T],
    batch_size: int,
    device: str,
    on_shrink: Callable[[int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Encode `items` in batches; on out of memory, halve the batch and retry it.

    Nothing is lost or skipped: the batch that failed is encoded again in smaller
    pieces. Only an out-of-memory error at batch size 1 is raised. `on_shrink` hears
    the new size, so an encoder can start its next call at the size that worked.
    """
    parts: dict[str, list[np.ndarray]] = {}
    start, size = 0, max(1, batch_size)
    while start < len(items):
        chunk = items[start : start + size]
        try:
            out = encode(chunk)
        except Exception as exc:
            if not is_out_of_memory(exc) or size == 1:
                raise
            _release_cached_memory(device)
            size = max(1, size // 2)
            log.warning("out of memory on %s; batch size halved to %d", device, size)
            if on_shrink is not None:
                on_shrink(size)
            continue
        for space, vectors in out.items():
            parts.setdefault(space, []).append(vectors)
        start += len(chunk)
    return {space: np.concatenate(chunks) for space, chunks in parts.items()}
