"""The fusion classifiers: small torch modules over per-item modality vectors.

Every model takes the same inputs, `xs` (one (B, d_m) tensor per input, zero rows
where the item lacks that modality) and `present` ((B, M) bool), and returns class
log-probabilities, so one training loop and one evaluation serve them all, and an
ablation is `present[:, m] = False`.

Inputs are centred and scaled per input with statistics of the training items that
have it (buffers, saved with the weights): stored vectors are L2-normalised, so their
components are about 1/sqrt(d) and a linear layer would need huge weights to use them.
A missing input stays exactly zero after scaling, so it carries no signal but absence.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from mmstudio.fusion.metrics import PROBE


class FusionModel(nn.Module):
    """Input scaling shared by all methods; subclasses implement `log_probs`."""

    def __init__(self, dims: Sequence[int]) -> None:
        super().__init__()
        self.dims = tuple(int(d) for d in dims)
        for m, d in enumerate(self.dims):
            self.register_buffer(f"mean_{m}", torch.zeros(d))
        self.register_buffer("scale", torch.ones(len(self.dims)))

    @torch.no_grad()
    def fit_scaling(self, xs: Sequence[torch.Tensor], present: torch.Tensor) -> None:
        """Centre each input on its training items' mean and scale it to unit mean variance
        per component (one factor per input: the geometry within an input is kept)."""
        for m, x in enumerate(xs):
            rows = x[present[:, m]]
            if len(rows) < 2:
                continue
            mean = rows.mean(0)
            getattr(self, f"mean_{m}").copy_(mean)
            var = (rows - mean).pow(2).mean()
            self.scale[m] = 1.0 / var.clamp_min(1e-12).sqrt()

    def scaled(self, xs: Sequence[torch.Tensor], present: torch.Tensor) -> list[torch.Tensor]:
        mask = present.to(xs[0].dtype)
        return [(x - getattr(self, f"mean_{m}")) * self.scale[m] * mask[:, m : m + 1]
                for m, x in enumerate(xs)]

    def log_probs(self, xs: Sequence[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, xs: Sequence[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        return self.log_probs(xs, present)


class Probe(FusionModel):
    """Softmax regression on one input: the single-modality baseline."""

    def __init__(self, dims: Sequence[int], n_classes: int, index: int) -> None:
        super().__init__(dims)
        self.index = index
        self.linear = nn.Linear(self.dims[index], n_classes)

    def log_probs(self, xs, present):
        z = self.scaled(xs, present)[self.index]
        return F.log_softmax(self.linear(z), -1)


class EarlyFusion(FusionModel):
    """The inputs side by side plus the presence mask -> one-hidden-layer MLP."""

    def __init__(self, dims: Sequence[int], n_classes: int, hidden: int = 256,
                 dropout: float = 0.2) -> None:
        super().__init__(dims)
        self.mlp = nn.Sequential(nn.Linear(sum(self.dims) + len(self.dims), hidden), nn.ReLU(),
                                 nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def log_probs(self, xs, present):
        z = torch.cat([*self.scaled(xs, present), present.to(xs[0].dtype)], 1)
        return F.log_softmax(self.mlp(z), -1)


class LateFusion(FusionModel):
    """One linear head per input; the item's class distribution is the mixture of its
    present inputs' distributions, weighted by softmax(weights) renormalised over the
    inputs it has. `learned` False keeps the weights equal."""

    def __init__(self, dims: Sequence[int], n_classes: int, learned: bool = True) -> None:
        super().__init__(dims)
        self.heads = nn.ModuleList(nn.Linear(d, n_classes) for d in self.dims)
        logits = torch.zeros(len(self.dims))
        if learned:
            self.weight_logits = nn.Parameter(logits)
        else:
            self.register_buffer("weight_logits", logits)

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.weight_logits, 0)

    def log_probs(self, xs, present):
        z = self.scaled(xs, present)
        each = torch.stack([F.log_softmax(h(x), -1) for h, x in zip(self.heads, z, strict=True)],
                           1)  # (B, M, C)
        # an item with no input at all falls back to every head (on zeros: their biases)
        mask = present | ~present.any(1, keepdim=True)
        w = F.log_softmax(self.weight_logits.expand_as(mask).masked_fill(~mask, float("-inf")), 1)
        return torch.logsumexp(w.unsqueeze(-1) + each, 1)


class AttentionFusion(FusionModel):
    """Each present input becomes a token (projection, layer norm, a learned modality
    embedding); a learned query token attends over them and itself (so an item with no
    input still has a key), then a feed-forward block and a linear head classify it.

    The layer norm keeps every token's scale alike, so a model that wants to ignore a
    modality has to do it through the attention, which then says what it relied on.
    """

    def __init__(self, dims: Sequence[int], n_classes: int, d_model: int = 64,
                 heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__(dims)
        self.project = nn.ModuleList(nn.Linear(d, d_model) for d in self.dims)
        self.token_norm = nn.LayerNorm(d_model)
        self.modality = nn.Parameter(0.02 * torch.randn(len(self.dims), d_model))
        self.query = nn.Parameter(torch.randn(1, 1, d_model))
        self.attend = nn.MultiheadAttention(d_model, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, 2 * d_model), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(2 * d_model, d_model))
        self.norm2 = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_classes)
        self.dropout = nn.Dropout(dropout)

    def forward_with_attention(self, xs, present) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-probabilities (B, C), attention of the query over the inputs (B, M):
        averaged over heads, renormalised over the item's present inputs, zero where
        missing)."""
        z = self.scaled(xs, present)
        tokens = torch.stack([self.token_norm(p(x)) for p, x in zip(self.project, z, strict=True)],
                             1) + self.modality  # (B, M, d)
        query = self.query.expand(len(present), -1, -1)
        keys = self.dropout(torch.cat([query, tokens], 1))
        ignore = torch.cat([torch.zeros_like(present[:, :1]), ~present], 1)
        out, weights = self.attend(query, keys, keys, key_padding_mask=ignore, need_weights=True,
                                   average_attn_weights=True)
        h = self.norm1(query + out)
        h = self.norm2(h + self.ffn(h))
        over_inputs = weights[:, 0, 1:]
        total = over_inputs.sum(1, keepdim=True)
        over_inputs = torch.where(total > 0, over_inputs / total.clamp_min(1e-12),
                                  torch.zeros_like(over_inputs))
        return F.log_softmax(self.head(h[:, 0]), -1), over_inputs

    def log_probs(self, xs, present):
        return self.forward_with_attention(xs, present)[0]


def build(method: str, inputs: Sequence[str], dims: Sequence[int], n_classes: int, *,
          hidden: int = 256, dropout: float = 0.2, d_model: int = 64, heads: int = 4,
          late_weights: str = "learned") -> FusionModel:
    """The untrained model of a method ("early", "late", "attention", "probe:INPUT")."""
    if method.startswith(PROBE):
        return Probe(dims, n_classes, list(inputs).index(method[len(PROBE):]))
    if method == "early":
        return EarlyFusion(dims, n_classes, hidden, dropout)
    if method == "late":
        return LateFusion(dims, n_classes, learned=late_weights == "learned")
    if method == "attention":
        return AttentionFusion(dims, n_classes, d_model, heads, dropout / 2)
    raise ValueError(f"unknown fusion method {method!r}")
