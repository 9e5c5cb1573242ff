"""Token relevance for text: which words of a query (or of a matched chunk) drove the match.

- `gradinput`: gradient × input on the token embeddings (Shrikumar et al. 2016;
  Denil et al. 2014): the similarity's gradient with respect to each token's input
  embedding, dotted with that embedding. One forward and one backward pass.
- `occlusion`: each token left out in turn; its relevance is the drop in similarity.

Both run the encoder's own text path: MiniLM with mean pooling (the starter space), or
a CLIP / SigLIP / CLAP text tower on the same windows the encoder feeds it, averaged by
their token counts as `embed_texts` does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from mmstudio.core.jobs import CancelToken, Progress, ProgressCallback, no_progress
from mmstudio.explain.result import TokenScore, token_weights

Span = tuple[int, int]


@dataclass
class TextTower:
    """A text encoder as a function of token-id windows.

    rows: framed token ids per window; spans: per position, the character span of a
    text token, or None for special tokens. weights: each window's weight in the mean.
    embed: windows -> (n, dim) unit vectors (differentiable). embeddings: the module
    whose output are the token embeddings (for gradient × input).
    """

    rows: list[list[int]]
    spans: list[list[Span | None]]
    weights: list[float]
    embed: Callable[[Sequence[Sequence[int]]], torch.Tensor]
    embeddings: torch.nn.Module
    lock: Any
    batch_size: int = 64

    def combine(self, vectors: torch.Tensor, weights: Sequence[float]) -> torch.Tensor:
        w = torch.as_tensor(list(weights), dtype=vectors.dtype, device=vectors.device)
        return F.normalize((vectors * w[:, None]).sum(dim=0), dim=0)


def starter_text_tower(encoder: Any, text: str) -> TextTower:
    """MiniLM (space `starter`): one window, truncated as the encoder truncates."""
    tokenizer, model = encoder.tokenizer, encoder.model
    enc = tokenizer(text, truncation=True, max_length=encoder.max_tokens,
                    return_offsets_mapping=True, return_special_tokens_mask=True)
    spans = [None if special else (int(a), int(b)) for (a, b), special
             in zip(enc["offset_mapping"], enc["special_tokens_mask"], strict=True)]
    device = next(model.parameters()).device

    def embed(rows: Sequence[Sequence[int]]) -> torch.Tensor:
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), tokenizer.pad_token_id or 0, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(list(r), dtype=torch.long)
            mask[i, :len(r)] = 1
        ids, mask = ids.to(device), mask.to(device)
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return F.normalize(((hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)).float(), dim=-1)

    return TextTower([list(enc["input_ids"])], [spans], [1.0], embed,
                     model.get_input_embeddings(), encoder.lock)


def hf_text_tower(encoder: Any, text: str) -> TextTower:
    """A CLIP, SigLIP or CLAP text tower, on the windows `embed_texts` would use."""
    from mmstudio.encoders.hf_clip import pooled

    layout = encoder.text_layout
    with encoder.lock:
        enc = encoder.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                                verbose=False)
    ids, offsets = list(enc["input_ids"]), [tuple(map(int, o)) for o in enc["offset_mapping"]]
    rows, spans, weights = [], [], []
    step = layout.content
    for start in range(0, max(len(ids), 1), step):
        piece = ids[start:start + step]
        rows.append([*layout.prefix, *piece, *layout.suffix])
        spans.append([None] * len(layout.prefix) + offsets[start:start + step]
                     + [None] * len(layout.suffix))
        weights.append(float(max(1, len(piece))))
    model = encoder.model

    def embed(windows: Sequence[Sequence[int]]) -> torch.Tensor:
        out = model.get_text_features(**encoder.window_inputs(windows))
        return F.normalize(pooled(out).float(), dim=-1)

    return TextTower(rows, spans, weights, embed, _token_embeddings(model.text_model),
                     encoder.lock)


def _token_embeddings(tower: torch.nn.Module) -> torch.nn.Module:
    """The token-embedding table of a text tower: its first nn.Embedding (CLIP's
    token_embedding, RoBERTa's word_embeddings), registered before the positions."""
    for module in tower.modules():
        if isinstance(module, torch.nn.Embedding):
            return module
    raise ValueError("no token embedding in the text tower")


def gradinput(tower: TextTower, vector: np.ndarray) -> tuple[list[TokenScore], float]:
    """Gradient × input per text token, and the similarity."""
    caught: list[torch.Tensor] = []
    hook = tower.embeddings.register_forward_hook(lambda _m, _i, out: caught.append(out))
    try:
        with tower.lock, torch.enable_grad():
            vectors = tower.embed(tower.rows)
            q = _query(vector, vectors)
            score = tower.combine(vectors, tower.weights) @ q
            (grad,) = torch.autograd.grad(score, caught[0])
    finally:
        hook.remove()
    relevance = (grad * caught[0].detach()).sum(dim=-1).float().cpu().numpy()
    return _scores(tower, lambda row, pos: float(relevance[row, pos])), float(score.detach())


def occlusion(tower: TextTower, vector: np.ndarray, *,
              progress: ProgressCallback = no_progress,
              cancel: CancelToken | None = None) -> tuple[list[TokenScore], float]:
    """The drop in similarity when each text token is left out, and the similarity."""
    places = [(r, p) for r, spans in enumerate(tower.spans)
              for p, span in enumerate(spans) if span is not None]
    drops: dict[tuple[int, int], float] = {}
    with tower.lock, torch.inference_mode():
        vectors = tower.embed(tower.rows)
        q = _query(vector, vectors)
        base = float(tower.combine(vectors, tower.weights) @ q)
        for done in range(0, len(places), tower.batch_size):
            if cancel is not None:
                cancel.raise_if_cancelled()
            chunk = places[done:done + tower.batch_size]
            variants = tower.embed([tower.rows[r][:p] + tower.rows[r][p + 1:] for r, p in chunk])
            for (r, p), v in zip(chunk, variants, strict=True):
                changed = vectors.clone()
                changed[r] = v
                weights = list(tower.weights)
                weights[r] = max(1.0, weights[r] - 1) if len(weights) > 1 else weights[r]
                drops[(r, p)] = base - float(tower.combine(changed, weights) @ q)
            progress(Progress(done + len(chunk), len(places), "tokens left out"))
    return _scores(tower, lambda row, pos: drops[(row, pos)]), base


def _query(vector: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    q = torch.as_tensor(np.asarray(vector, np.float32).reshape(-1), device=like.device)
    return F.normalize(q, dim=0)


def _scores(tower: TextTower, score: Callable[[int, int], float]) -> list[TokenScore]:
    """TokenScores of the text tokens in text order (spans are the tokenizer's)."""
    return token_weights([TokenScore("", span[0], span[1], score(r, p))
                          for r, spans in enumerate(tower.spans)
                          for p, span in enumerate(spans) if span is not None])


def with_text(tokens: list[TokenScore], text: str, offset: int = 0) -> list[TokenScore]:
    """Tokens with their text filled in from `text` and offsets moved by `offset`."""
    return [TokenScore(text[t.start:t.end], t.start + offset, t.end + offset, t.score, t.weight)
            for t in tokens]
