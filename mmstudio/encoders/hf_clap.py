"""CLAP checkpoints through transformers: audio and text -> one space.

The default is laion/clap-htsat-unfused. Audio arrives as `Audio` windows (the ingest
cuts every file into the same 3-second windows for all audio spaces, so points line
up); each is brought to the feature extractor's rate (48 kHz for real CLAP) with the
PyAV resampler shared with decoding. The feature extractor repeats a short window to
fill its 10 seconds (`repeatpad`, as in training). Audio longer than that is split
into equal windows of at most 10 s whose unit vectors are averaged, so nothing is
cropped at random (the extractor's `rand_trunc` would pick a random 10 s).

Text goes through the RoBERTa tokenizer, windowed like CLIP text when longer than the
77 tokens CLAP was trained on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mmstudio.core.errors import ModelUnavailableError
from mmstudio.core.media.audio import resample_blocks
from mmstudio.core.segments import Audio
from mmstudio.encoders.base import l2_normalise
from mmstudio.encoders.hf_clip import HFEncoder, pooled, weighted_mean

#: caption length CLAP was trained with
TRAINED_TEXT_TOKENS = 77


class ClapEncoder(HFEncoder):
    """A CLAP checkpoint: audio and text -> one space.

    ref: a checkpoint folder or a Hugging Face id already in the local cache.
    device, batch_size, attn_implementation: as for `ClipEncoder`.
    sample_rate: the rate the model hears (feature extractor's sampling_rate).
    window_seconds: the longest audio one forward pass takes (max_length_s).
    """

    processor_class = "AutoFeatureExtractor"

    def __init__(self, ref: str = "laion/clap-htsat-unfused", device: str = "auto",
                 batch_size: int | None = None,
                 attn_implementation: str | None = None) -> None:
        super().__init__(ref, device, batch_size, attn_implementation)
        model_type = str(self.config.get("model_type", "")).lower()
        if model_type != "clap":
            raise ModelUnavailableError(f"{ref} is a {model_type or 'unknown'} checkpoint, not CLAP")
        text = self.config.get("text_config") or {}
        audio = self.config.get("audio_config") or {}
        self.dims = {self.space: int(self.config.get("projection_dim", 512))}
        self.routes = {"audio": (self.space,), "text": (self.space,)}
        # LAION trained CLAP on captions cut to 77 RoBERTa tokens (laion_clap's
        # tokenizer: max_length=77), though the tower has positions for 512 (RoBERTa's
        # 514 start after the padding index): windows of 77 stay where it was trained.
        positions = int(text.get("max_position_embeddings", 514))
        self.max_text_tokens = min(TRAINED_TEXT_TOKENS,
                                   positions - int(text.get("pad_token_id", 1)) - 1)
        # Fused checkpoints take 4 mel views (global + 3 crops), unfused ones 1; the
        # extractor also picks its mel filter bank by this mode (htk vs slaney).
        self.fusion = bool(audio.get("enable_fusion", False))
        features = self._read_preprocessor_config()
        self.sample_rate = int(features.get("sampling_rate", 48_000))
        self.window_seconds = float(features.get("max_length_s", 10))

    def _read_preprocessor_config(self) -> dict[str, Any]:
        path = self.folder / "preprocessor_config.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelUnavailableError(f"{self.folder} has no preprocessor_config.json") from None
        except (OSError, ValueError) as exc:
            raise ModelUnavailableError(f"{path} cannot be read: {exc}") from exc

    @property
    def window_samples(self) -> int:
        return int(round(self.window_seconds * self.sample_rate))

    @property
    def feature_extractor(self) -> Any:
        """The checkpoint's ClapFeatureExtractor (log-mel spectrogram)."""
        return self.processor

    # ------------------------------------------------------------------- audio

    def prepare(self, audio: Audio) -> list[np.ndarray]:
        """Mono float32 pieces at `sample_rate`, each at most `window_seconds` long."""
        if not isinstance(audio, Audio):
            raise TypeError(f"{self.name} expects Audio, got {type(audio).__name__}")
        samples = np.ravel(np.asarray(audio.samples, dtype=np.float32))
        if audio.rate != self.sample_rate and samples.size:
            samples = np.concatenate(
                [np.zeros(0, np.float32), *resample_blocks([samples], audio.rate, self.sample_rate)]
            )
        samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
        if samples.size == 0:  # repeat-padding needs a sample to repeat: silence
            samples = np.zeros(1, np.float32)
        # Equal pieces rather than 10 s + remainder: each is repeat-padded alike.
        pieces = math.ceil(samples.size / self.window_samples)
        bounds = np.linspace(0, samples.size, pieces + 1).round().astype(int)
        return [samples[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def audio_inputs(self, pieces: Sequence[np.ndarray]) -> dict[str, Any]:
        """Model inputs (input_features, is_longer) for pieces from `prepare`, on device."""
        import torch

        self.load()
        extractor = self._processor
        inputs = dict(extractor(
            [np.asarray(p, dtype=np.float64) for p in pieces],
            sampling_rate=self.sample_rate,
            truncation="fusion" if self.fusion else "rand_trunc",
            padding=extractor.padding,
            max_length=self.window_samples,
            return_tensors="pt",
        ))
        # No piece is longer than the window. The extractor marks a random one "longer"
        # when none is (fused models), which would make a vector depend on its batch.
        inputs["is_longer"] = torch.zeros((len(pieces), 1), dtype=torch.bool)
        return self._to_device(inputs)

    def _encode_media(self, kind: str, items: list[Any]) -> np.ndarray:
        pieces, owners, weights = [], [], []
        for owner, audio in enumerate(items):
            for piece in self.prepare(audio):
                pieces.append(piece)
                owners.append(owner)
                weights.append(piece.size)
        vectors = self._run("audio", self._encode_pieces, pieces)
        return weighted_mean(vectors, np.asarray(owners), np.asarray(weights, np.float64),
                             len(items))

    def _encode_pieces(self, pieces: Sequence[np.ndarray]) -> np.ndarray:
        out = self._model.get_audio_features(**self.audio_inputs(pieces))
        return l2_normalise(pooled(out).float().cpu().numpy())
