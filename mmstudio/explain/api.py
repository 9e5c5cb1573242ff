"""explain(): why a search result matched its query, by a chosen method.

Dispatch only: which methods apply to a result (by the encoder that wrote its space
and the kind of segment that matched), and which module computes each.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from mmstudio.core import media
from mmstudio.core.errors import MediaError, MmstudioError
from mmstudio.core.jobs import CancelToken, Progress, ProgressCallback, no_progress
from mmstudio.core.preview import similarity_curve
from mmstudio.core.search import SearchQuery, SearchResult, encode_query
from mmstudio.core.segments import KINDS_OF, Audio
from mmstudio.explain.result import METHOD_LABELS, Explanation, unit_range

#: methods per family of encoder, the recommended one first
_METHODS: dict[str, tuple[str, ...]] = {
    "cnn": ("gradcam", "rise", "occlusion"),
    "vit": ("chefer", "rollout", "rise", "occlusion"),
    "text": ("gradinput", "occlusion"),
    "clap": ("gradinput", "occlusion"),
    "signal": ("occlusion",),
}


def methods_for(library, result: SearchResult) -> list[str]:
    """The methods that can explain `result`, the recommended one first; [] if none.

    Cheap (no model is loaded): the GUI calls it to fill its method list.
    """
    try:
        encoder, kind = _route(library, result)
    except MmstudioError:
        return []
    family = _family(encoder, kind)
    return list(_METHODS.get(family, ()))


def explain(
    library,
    query: SearchQuery,
    result: SearchResult,
    *,
    vectors: Mapping[str, np.ndarray] | None = None,
    method: str | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> Explanation:
    """A job: the relevance of `result`'s parts (and the text query's tokens) to the match.

    vectors: the query's {space: vector} from the search (encoded again when missing).
    The part explained is the segment the search matched: the image, the video frame
    or audio window at the result's moment, the text chunk. MediaError when the file
    cannot be read any more, MmstudioError when nothing here can explain the result.
    """
    started = time.perf_counter()
    encoder, kind = _route(library, result)
    methods = _METHODS.get(_family(encoder, kind), ())
    method = method or (methods[0] if methods else "")
    if method not in methods:
        raise MmstudioError(f"{METHOD_LABELS.get(method, method) or 'no method'} cannot explain "
                            f"a match in {result.space}; use {', '.join(methods) or 'none'}")
    vectors = dict(vectors or {})
    if result.space not in vectors:
        vectors.update(encode_query(query, library.encoders()))
    vector = vectors.get(result.space)
    if vector is None:
        raise MmstudioError(f"the query has no vector in {result.space}")
    if not Path(result.path).is_file():
        raise MediaError(result.path, "file not found: it was moved or deleted after indexing")
    progress(Progress(0, 1, "reading the item"))
    if kind == "image":
        fields = _explain_image(encoder, result, vector, method, progress, cancel)
    elif kind == "audio":
        fields = _explain_audio(encoder, result, vector, method, progress, cancel)
    else:
        fields = _explain_text(encoder, result, vector, method, progress, cancel)
    if result.modality in ("video", "audio"):
        fields["curve"] = similarity_curve(library, result.path, vectors, result.space,
                                           cancel=cancel)
    if query.text is not None:
        fields.update(_query_tokens(library, query.text, result))
    progress(Progress(1, 1, "done"))
    return Explanation(method=method, space=result.space, modality=result.modality,
                       seconds=time.perf_counter() - started, **fields)


def _route(library, result: SearchResult):
    """The encoder that wrote `result.space` for the kind of segment matched."""
    kinds = sorted(KINDS_OF.get(result.modality, ()))
    for encoder in library.encoders():
        for kind in kinds:
            if result.space in encoder.routes.get(kind, ()):
                return encoder, kind
    raise MmstudioError(f"no encoder of this library writes {result.space} any more")


def _family(encoder, kind: str) -> str:
    from mmstudio.encoders.hf_clap import ClapEncoder
    from mmstudio.encoders.hf_clip import ClipEncoder
    from mmstudio.encoders.starter import StarterAudio, StarterImage, StarterText

    if kind == "text":
        return "text" if isinstance(encoder, (StarterText, ClipEncoder, ClapEncoder)) else ""
    if kind == "image":
        if isinstance(encoder, StarterImage):
            return "cnn"
        # SigLIP 2 (NaFlex) takes a variable list of patches, not a pixel grid
        return "vit" if isinstance(encoder, ClipEncoder) and encoder.model_type != "siglip2" else ""
    if isinstance(encoder, ClapEncoder):
        return "clap"
    return "signal" if isinstance(encoder, StarterAudio) else ""


def _explain_image(encoder, result, vector, method, progress, cancel) -> dict:
    from mmstudio.core.media.video import frame_at
    from mmstudio.explain import image as methods

    if result.modality == "video":
        picture = frame_at(result.path, result.start or 0.0)
    else:
        picture = media.load_image(result.path, media.DEFAULT_OPTIONS)
    family = _family(encoder, "image")
    tower = (methods.starter_tower if family == "cnn" else methods.vit_tower)(
        encoder, result.space, picture)
    if method == "gradcam":
        relevance, similarity = methods.gradcam(tower, vector)
    elif method in ("chefer", "rollout"):
        relevance, similarity = methods.attention(tower, vector, method)
    elif method == "rise":
        relevance, similarity = methods.rise(tower, vector, progress=progress, cancel=cancel)
    else:
        relevance, similarity = methods.occlusion(tower, vector, progress=progress, cancel=cancel)
    fields = dict(similarity=similarity,
                  heatmap=unit_range(methods.to_item(relevance, tower.box, picture.size)))
    if result.modality == "video":
        fields.update(frame=picture, frame_time=result.start)
    return fields


def _explain_audio(encoder, result, vector, method, progress, cancel) -> dict:
    from mmstudio.explain import audio as methods

    start = result.start or 0.0
    end = result.end if result.end is not None else start
    clip = _window(result.path, result.modality, start, end, encoder.sample_rate)
    if _family(encoder, "audio") == "clap":
        tower = methods.clap_tower(encoder, clip, vector)
    else:
        tower = methods.starter_audio_tower(encoder, clip, vector)
    if method == "gradinput" and tower.gradinput is not None:
        relevance, similarity = tower.gradinput()
    else:
        relevance, similarity = methods.occlusion(tower, progress=progress, cancel=cancel)
    return dict(similarity=similarity, heatmap=unit_range(relevance),
                spectrogram=tower.spectrogram, window=(start, end), frame_time=start)


def _window(path: str, modality: str, start: float, end: float, rate: int) -> Audio:
    """The samples of [start, end] seconds of a sound or a video's soundtrack at `rate`."""
    from mmstudio.core.media import audio as media_audio
    from mmstudio.core.media.video import soundtrack_blocks

    blocks = (media_audio.audio_blocks(path, rate) if modality == "audio"
              else soundtrack_blocks(Path(path), path, rate))
    first, last = int(round(start * rate)), max(int(round(end * rate)), int(round(start * rate)) + 1)
    kept, seen = [], 0
    for block in blocks:
        lo, hi = max(first - seen, 0), min(last - seen, block.size)
        if hi > lo:
            kept.append(block[lo:hi])
        seen += block.size
        if seen >= last:
            break
    if not kept:
        raise MediaError(path, f"no sound at {start:.1f}-{end:.1f} s")
    return Audio(np.concatenate(kept).astype(np.float32), rate)


def _explain_text(encoder, result, vector, method, progress, cancel) -> dict:
    from mmstudio.core.media.text import read_text
    from mmstudio.explain import text as methods

    whole = read_text(result.path)
    start = result.char_start or 0
    end = result.char_end if result.char_end is not None else len(whole)
    chunk = whole[start:end]
    tower = _text_tower(encoder, chunk)
    if method == "gradinput":
        tokens, similarity = methods.gradinput(tower, vector)
    else:
        tokens, similarity = methods.occlusion(tower, vector, progress=progress, cancel=cancel)
    return dict(similarity=similarity, tokens=methods.with_text(tokens, chunk, start))


def _text_tower(encoder, text: str):
    from mmstudio.encoders.starter import StarterText
    from mmstudio.explain import text as methods

    if isinstance(encoder, StarterText):
        return methods.starter_text_tower(encoder, text)
    return methods.hf_text_tower(encoder, text)


def _query_tokens(library, text: str, result: SearchResult) -> dict:
    """Gradient × input of the text query's tokens against the matched segment's stored
    vector (the very pair the search compared)."""
    from mmstudio.explain import text as methods

    encoder = next((e for e in library.encoders()
                    if result.space in e.routes.get("text", ())), None)
    stored = library.store.vectors([result.segment_id], result.space).get(result.segment_id)
    if encoder is None or stored is None or _family(encoder, "text") != "text":
        return {}
    stripped = text.strip()
    tokens, _ = methods.gradinput(_text_tower(encoder, stripped), stored)
    return dict(query_tokens=methods.with_text(tokens, stripped, text.index(stripped)),
                query_method="gradinput")


def cache_key(query: SearchQuery, result: SearchResult, method: str) -> tuple:
    """What identifies an explanation: the query, the segment matched, the method."""
    return (query.text, str(query.path) if query.path else None, result.space,
            result.item_id, result.segment_id, method)


class ExplainCache:
    """The last `capacity` explanations, by `cache_key` (thread-safe LRU)."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple, Explanation] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Explanation | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple, value: Explanation) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
