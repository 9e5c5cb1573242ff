"""Relevance through a transformer's attention layers: rollout and Chefer et al.

Pure functions of the attention maps (and their gradients), one (heads, N, N) tensor per
layer, first layer first; token 0 is the one the embedding is read from (CLS), or the
caller reduces the N x N relevance with its own pooling row (SigLIP's attention head).

- `rollout` (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers"): each
  layer's head-mean attention, mixed half and half with the identity for the residual
  path and renormalised by rows, multiplied through the layers.
- `chefer` (Chefer, Gur & Wolf 2021, "Generic Attention-model Explainability for
  Interpreting Bi-Modal and Encoder-Decoder Transformers", eq. 5-6): per layer the
  attention weighted by the gradient of the score with respect to it, negative parts
  dropped, mean over heads, Ā = E_h[(∇A ⊙ A)+]; relevance starts as the identity and
  accumulates R ← R + Ā·R layer by layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def rollout(attentions: Sequence[torch.Tensor]) -> torch.Tensor:
    """(N, N) attention rollout of (heads, N, N) maps."""
    if not attentions:
        raise ValueError("no attention maps")
    n = attentions[0].shape[-1]
    eye = torch.eye(n, dtype=torch.float64)
    relevance = eye.clone()
    for a in attentions:
        mixed = 0.5 * a.detach().double().mean(dim=0) + 0.5 * eye
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        relevance = mixed @ relevance
    return relevance


def chefer(attentions: Sequence[torch.Tensor], gradients: Sequence[torch.Tensor],
           start_layer: int = 0) -> torch.Tensor:
    """(N, N) gradient-weighted relevance of (heads, N, N) maps and their gradients,
    from `start_layer` on (earlier layers count as identities; negative counts from
    the end, so -1 is the last layer alone)."""
    if not attentions or len(attentions) != len(gradients):
        raise ValueError("one gradient per attention map is needed")
    n = attentions[0].shape[-1]
    relevance = torch.eye(n, dtype=torch.float64)
    start = start_layer % len(attentions)
    for a, g in zip(attentions[start:], gradients[start:], strict=True):
        weighted = (g.detach().double() * a.detach().double()).clamp(min=0).mean(dim=0)
        relevance = relevance + weighted @ relevance
    return relevance


def token_map(relevance: torch.Tensor, pool: torch.Tensor | None = None) -> torch.Tensor:
    """Relevance of each patch token for the pooled embedding: the CLS row without CLS,
    or, for a model that pools with an attention head over all tokens (no CLS), the head's
    (N,) pooling weights times the relevance."""
    if pool is None:
        return relevance[0, 1:]
    return pool.detach().double() @ relevance
