"""CLIP, SigLIP and SigLIP 2 checkpoints through transformers: text and images -> one space.

Any checkpoint folder or cached Hugging Face id of model_type clip, siglip or siglip2
loads through the Auto classes (safetensors only, no remote code, no download). The
space is named after the checkpoint (`clip-vit-base-patch32`).

Text longer than the text tower's positions (77 tokens for CLIP, 64 for SigLIP) is not
cut: its tokens are split into windows that fit, each window gets the tokenizer's own
special tokens (CLIP: BOS ... EOS; SigLIP: ... EOS), and the unit window vectors are
averaged, weighted by their token counts, then normalised again.

`HFEncoder` holds what CLIP and CLAP share: lazy thread-safe loading, device and
precision, out-of-memory back-off, and the windowed text path.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmstudio.core.errors import ModelUnavailableError
from mmstudio.core.segments import Kind, Payload
from mmstudio.encoders import device as devices
from mmstudio.encoders import models
from mmstudio.encoders.base import l2_normalise

if TYPE_CHECKING:
    import torch
    from PIL import Image

log = logging.getLogger(__name__)

#: a tokenizer's model_max_length above this is transformers' "no limit" placeholder
_NO_LIMIT = 100_000


def read_config(folder: Path) -> dict[str, Any]:
    """config.json of a checkpoint folder, without importing transformers."""
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"{folder}/config.json cannot be read: {exc}") from exc


def _missing_package(ref: str, exc: ImportError) -> str:
    reason = next((line.strip() for line in str(exc).splitlines() if line.strip()), str(exc))
    reason = reason.split(". ")[0].rstrip(".")
    hint = " Install it with: pip install sentencepiece" if "sentencepiece" in reason.lower() else ""
    return f"{ref} cannot be loaded: {reason}.{hint}"


# ------------------------------------------------------------------- text windows


@dataclass(frozen=True)
class WindowLayout:
    """How one window of token ids is framed: the special ids the tokenizer puts around
    a single sequence, and the most tokens (specials included) the text tower takes."""

    prefix: tuple[int, ...]
    suffix: tuple[int, ...]
    limit: int

    @property
    def content(self) -> int:
        """Token ids of text per window."""
        return self.limit - len(self.prefix) - len(self.suffix)

    def windows(self, ids: Sequence[int]) -> list[list[int]]:
        """Framed windows covering `ids` in order; an empty text still gives one window."""
        step = self.content
        pieces = [ids[i:i + step] for i in range(0, len(ids), step)] or [ids[:0]]
        return [[*self.prefix, *piece, *self.suffix] for piece in pieces]


def window_layout(tokenizer: Any, limit: int) -> WindowLayout:
    """Find the special ids a tokenizer adds around one sequence by encoding a probe with
    and without them; works for any template of the form prefix + text + suffix."""
    probe = "a photo"
    bare = list(tokenizer(probe, add_special_tokens=False)["input_ids"])
    full = list(tokenizer(probe, add_special_tokens=True)["input_ids"])
    for start in range(len(full) - len(bare) + 1):
        if full[start:start + len(bare)] == bare:
            layout = WindowLayout(tuple(full[:start]), tuple(full[start + len(bare):]), limit)
            break
    else:  # a template that rewrites the text itself: frame nothing, still cap the length
        log.warning("cannot tell the special tokens of %s apart", type(tokenizer).__name__)
        layout = WindowLayout((), (), limit)
    if layout.content < 1:
        raise ModelUnavailableError(f"text limit {limit} leaves no room for text tokens")
    return layout


def pad_windows(
    windows: Sequence[Sequence[int]], pad_id: int, length: int, left: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) of windows padded to `length`, on the CPU."""
    import torch

    ids = torch.full((len(windows), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(windows), length), dtype=torch.long)
    for row, window in enumerate(windows):
        span = slice(length - len(window), length) if left else slice(0, len(window))
        ids[row, span] = torch.tensor(window, dtype=torch.long)
        mask[row, span] = 1
    return ids, mask


def weighted_mean(
    vectors: np.ndarray, owners: np.ndarray, weights: np.ndarray, n: int
) -> np.ndarray:
    """Per owner, the weighted mean of its rows, L2-normalised: (n, dim)."""
    out = np.zeros((n, vectors.shape[1]), dtype=np.float64)
    np.add.at(out, owners, vectors.astype(np.float64) * weights[:, None])
    return l2_normalise(out)


def pooled(output: Any) -> torch.Tensor:
    """The embedding from get_*_features: a tensor in transformers 4, a ModelOutput whose
    pooler_output holds the projected embedding in transformers 5."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    value = getattr(output, "pooler_output", None)
    if value is None and isinstance(output, tuple):
        value = output[1]
    if value is None:
        raise TypeError(f"no embedding in {type(output).__name__}")
    return value


# -------------------------------------------------------------------- shared base


class HFEncoder:
    """Lazy, thread-safe loading and batched running of a transformers dual encoder.

    Subclasses set `routes`, the text settings and `processor_class` (the transformers
    Auto class of their other modality's processor), and implement `_encode_media`.
    """

    #: "AutoImageProcessor" (CLIP, SigLIP) or "AutoFeatureExtractor" (CLAP)
    processor_class: str

    name: str
    dims: dict[str, int]
    routes: dict[Kind, tuple[str, ...]]
    #: pad every text window to the limit (SigLIP was trained that way) instead of to the
    #: longest window of the batch
    pad_to_limit = False
    #: pass the attention mask to the text tower (SigLIP was trained without one)
    text_attention_mask = True

    def __init__(self, ref: str, device: str, batch_size: int | None,
                 attn_implementation: str | None) -> None:
        self.ref = ref
        self.folder = models.resolve(ref)  # ModelUnavailableError names the fetch command
        self.config = read_config(self.folder)
        self.space = models.space_name(ref)
        self.name = self.space
        self.device_preference = device
        self.attn_implementation = attn_implementation
        self.max_text_tokens = 0  # set by subclasses from config.json
        self._batch_size = batch_size
        #: kind -> batch size; set at load, halved for good after an out-of-memory error
        self.batch_sizes: dict[str, int] = {}
        self.device = ""
        # One lock for loading and running: fast tokenizers cannot be shared between
        # threads ("Already borrowed"), and one forward pass already uses every core.
        self._lock = threading.RLock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._processor: Any = None
        self._layout: WindowLayout | None = None

    # ----------------------------------------------------------------- loading

    @property
    def lock(self) -> threading.RLock:
        """Held while the model runs; whoever drives `model` directly holds it too."""
        return self._lock

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def batch_size(self) -> int:
        """How many inputs the ingest hands over per call: the device's batch size once
        loaded (so a GPU gets its large batches), the asked-for size or 32 before."""
        if self.batch_sizes:
            return max(self.batch_sizes.values())
        return self._batch_size or 32

    @property
    def model(self) -> Any:
        """The transformers model, in eval mode on `device` (loads it)."""
        self.load()
        return self._model

    @property
    def tokenizer(self) -> Any:
        self.load()
        return self._tokenizer

    @property
    def processor(self) -> Any:
        """What turns this encoder's images or audio into tensors (the checkpoint's own)."""
        self.load()
        return self._processor

    def load(self) -> None:
        """Load tokenizer, processor and weights once; later calls return at once."""
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            import torch  # noqa: F401  (fails early and plainly when torch is missing)
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # our jobs report progress themselves
            device = devices.pick_device(self.device_preference)
            dtype = devices.inference_dtype(device)
            log.info("loading %s from %s on %s (%s)", self.ref, self.folder, device, dtype)
            try:
                tokenizer, model = self._load_parts(dtype)
            except ImportError as exc:  # SigLIP 1's SiglipTokenizer needs sentencepiece
                raise ModelUnavailableError(_missing_package(self.ref, exc)) from exc
            except OSError as exc:  # no safetensors weights, a missing tokenizer file
                raise ModelUnavailableError(f"{self.ref} cannot be loaded: {exc}") from exc
            model = model.to(device).eval()
            limit = self.max_text_tokens
            tokenizer_limit = int(getattr(tokenizer, "model_max_length", 0) or 0)
            if 0 < tokenizer_limit < _NO_LIMIT:
                limit = min(limit, tokenizer_limit)
            self._layout = window_layout(tokenizer, limit)
            self.device = device
            self.batch_sizes = {
                kind: self._batch_size or devices.default_batch_size(device, kind)
                for kind in self.routes
            }
            self._tokenizer = tokenizer
            self._model = model  # last: `loaded` turns true only when all is ready

    def _load_parts(self, dtype: torch.dtype) -> tuple[Any, Any]:
        import transformers

        local = dict(local_files_only=True, trust_remote_code=False)
        tokenizer = transformers.AutoTokenizer.from_pretrained(self.folder, **local)
        auto_processor = getattr(transformers, self.processor_class)
        self._processor = auto_processor.from_pretrained(self.folder, **local)
        model = transformers.AutoModel.from_pretrained(
            self.folder, **self._from_pretrained_kwargs(dtype)
        )
        return tokenizer, model

    def _from_pretrained_kwargs(self, dtype: torch.dtype) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(
            use_safetensors=True, trust_remote_code=False, local_files_only=True, dtype=dtype
        )
        if self.attn_implementation:
            kwargs["attn_implementation"] = self.attn_implementation
        return kwargs

    # ---------------------------------------------------------------- encoding

    def encode(self, kind: Kind, batch: Sequence[Payload]) -> dict[str, np.ndarray]:
        if kind not in self.routes:
            raise ValueError(f"{self.name} does not encode {kind!r} (only {sorted(self.routes)})")
        dim = self.dims[self.space]
        if len(batch) == 0:
            return {self.space: np.zeros((0, dim), np.float32)}
        self.load()
        if kind == "text":
            return {self.space: self.embed_texts([str(t) for t in batch])}
        return {self.space: self._encode_media(kind, list(batch))}

    def _run(self, kind: str, encode: Callable[[Sequence[Any]], np.ndarray],
             items: Sequence[Any]) -> np.ndarray:
        """`encode` over `items` in batches, with out-of-memory back-off that is kept."""
        import torch

        def step(chunk: Sequence[Any]) -> dict[str, np.ndarray]:
            with self._lock, torch.inference_mode():
                return {self.space: encode(chunk)}

        def shrink(size: int) -> None:
            self.batch_sizes[kind] = size

        out = devices.run_in_batches(step, items, self.batch_sizes[kind], self.device, shrink)
        return out[self.space]

    def _to_device(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Tensors onto the model's device; floating ones in the model's precision."""
        dtype = self._model.dtype
        moved = {}
        for key, value in inputs.items():
            if hasattr(value, "to"):
                value = value.to(self.device)
                if value.is_floating_point():
                    value = value.to(dtype)
            moved[key] = value
        return moved

    def _encode_media(self, kind: str, items: list[Any]) -> np.ndarray:
        raise NotImplementedError

    # -------------------------------------------------------------------- text

    @property
    def text_layout(self) -> WindowLayout:
        """How text is framed and split into windows (loads the tokenizer)."""
        self.load()
        return self._layout

    def text_windows(self, text: str) -> list[list[int]]:
        """The framed token-id windows `text` is encoded as (one for a short text)."""
        self.load()
        with self._lock:
            ids = self._tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        return self._layout.windows(list(ids))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) unit rows; long texts are averaged over their windows."""
        self.load()
        with self._lock:
            ids = self._tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        windows, owners, weights = [], [], []
        for owner, text_ids in enumerate(ids):
            for window in self._layout.windows(list(text_ids)):
                windows.append(window)
                owners.append(owner)
                # the window's own tokens; a window of an empty text still counts
                weights.append(max(1, len(window) - len(self._layout.prefix)
                                   - len(self._layout.suffix)))
        vectors = self.embed_windows(windows)
        return weighted_mean(vectors, np.asarray(owners), np.asarray(weights, np.float64),
                             len(texts))

    def embed_windows(self, windows: Sequence[Sequence[int]]) -> np.ndarray:
        """Unit vectors of framed token-id windows (from `text_windows`), in order."""
        self.load()
        if not windows:
            return np.zeros((0, self.dims[self.space]), np.float32)
        # windows of similar length batch together with less padding
        order = np.argsort([len(w) for w in windows], kind="stable")
        sorted_vectors = self._run("text", self._encode_windows, [list(windows[i]) for i in order])
        vectors = np.empty_like(sorted_vectors)
        vectors[order] = sorted_vectors
        return vectors

    def _encode_windows(self, windows: Sequence[list[int]]) -> np.ndarray:
        """Unit vectors of framed windows (called under the lock, in inference mode)."""
        out = self._model.get_text_features(**self.window_inputs(windows))
        return l2_normalise(pooled(out).float().cpu().numpy())

    def window_inputs(self, windows: Sequence[Sequence[int]]) -> dict[str, Any]:
        """Text-tower inputs for framed windows, padded as this model was trained, on
        its device."""
        tokenizer = self._tokenizer
        length = self._layout.limit if self.pad_to_limit else max(len(w) for w in windows)
        pad_id = tokenizer.pad_token_id
        if pad_id is None:
            pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        ids, mask = pad_windows(windows, pad_id, length, tokenizer.padding_side == "left")
        inputs = {"input_ids": ids}
        if self.text_attention_mask:
            inputs["attention_mask"] = mask
        return self._to_device(inputs)


# -------------------------------------------------------------------------- CLIP

_CLIP_TYPES = ("clip", "siglip", "siglip2")


def clip_dims(config: dict[str, Any]) -> tuple[int, int]:
    """(embedding dim, text positions) from config.json.

    CLIP projects both towers to `projection_dim`. SigLIP's text tower ends in a linear
    head of `projection_size` (default: the text width) and its vision tower in an
    attention-pooling head of the vision width; get_*_features return those directly.
    Missing keys take the config classes' defaults, which save_pretrained leaves out.
    """
    model_type = str(config.get("model_type", "")).lower()
    text = config.get("text_config") or {}
    vision = config.get("vision_config") or {}
    if model_type == "clip":
        return int(config.get("projection_dim", 512)), int(text.get("max_position_embeddings", 77))
    text_dim = int(text.get("projection_size") or text.get("hidden_size", 768))
    vision_dim = int(vision.get("hidden_size", 768))
    if text_dim != vision_dim:
        raise ModelUnavailableError(
            f"text ({text_dim}) and image ({vision_dim}) embeddings differ in size: "
            "not a SigLIP dual encoder mmstudio can use"
        )
    return text_dim, int(text.get("max_position_embeddings", 64))


class ClipEncoder(HFEncoder):
    """A CLIP, SigLIP or SigLIP 2 checkpoint: text and RGB images -> one space.

    ref: a checkpoint folder or a Hugging Face id already in the local cache.
    device: "auto", "cpu", "cuda", "cuda:N" or "mps" (chosen at load).
    batch_size: items per forward pass (default: by device and kind); halved on out of
    memory, and the smaller size is kept for later calls.
    attn_implementation: "eager" when attention weights are needed (relevance maps);
    None lets transformers choose (SDPA, whose weights come back as None).
    """

    processor_class = "AutoImageProcessor"

    def __init__(self, ref: str, device: str = "auto", batch_size: int | None = None,
                 attn_implementation: str | None = None) -> None:
        super().__init__(ref, device, batch_size, attn_implementation)
        self.model_type = str(self.config.get("model_type", "")).lower()
        if self.model_type not in _CLIP_TYPES:
            raise ModelUnavailableError(
                f"{ref} is a {self.model_type or 'unknown'} checkpoint, "
                "not CLIP, SigLIP or SigLIP 2"
            )
        dim, self.max_text_tokens = clip_dims(self.config)
        self.dims = {self.space: dim}
        self.routes = {"text": (self.space,), "image": (self.space,)}
        # SigLIP's text tower was trained on texts padded to 64 with no attention mask,
        # and pools the last position, padding or not: feed it the same.
        siglip = self.model_type != "clip"
        self.pad_to_limit = siglip
        self.text_attention_mask = not siglip

    @property
    def image_processor(self) -> Any:
        """The checkpoint's image processor (resize, crop, normalise)."""
        return self.processor

    def image_inputs(self, images: Sequence[Image.Image]) -> dict[str, Any]:
        """Model inputs for images, on the model's device: pixel_values (and, for SigLIP 2
        NaFlex, pixel_attention_mask and spatial_shapes)."""
        self.load()
        rgb = [im if im.mode == "RGB" else im.convert("RGB") for im in images]
        return self._to_device(dict(self._processor(images=rgb, return_tensors="pt")))

    def _encode_media(self, kind: str, items: list[Any]) -> np.ndarray:
        return self._run("image", self._encode_images, items)

    def _encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        out = self._model.get_image_features(**self.image_inputs(images))
        return l2_normalise(pooled(out).float().cpu().numpy())

