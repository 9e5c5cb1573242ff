"""Relevance maps: why a result matched (no Qt). See `api.explain`."""

from mmstudio.explain.api import ExplainCache, cache_key, explain, methods_for
from mmstudio.explain.colormap import COLORMAPS, blend, colorize, spectrogram_picture
from mmstudio.explain.result import METHOD_LABELS, Explanation, TokenScore

__all__ = ["COLORMAPS", "METHOD_LABELS", "ExplainCache", "Explanation", "TokenScore",
           "blend", "cache_key", "colorize", "explain", "methods_for",
           "spectrogram_picture"]
