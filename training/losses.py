"""Losses on a batch of L2-normalised encodings: the triplet loss with online mining, and
the binary-classification head on pairs formed inside the batch.

Triplet loss (FaceNet, Schroff et al. 2015): L(A, P, N) = max(||f(A) - f(P)||^2 -
||f(A) - f(N)||^2 + alpha, 0). Which triplets a batch contributes is the *mining* rule:

- ``batch-hard`` (Hermans et al. 2017): each anchor with its farthest positive and nearest
  negative in the batch, one triplet per anchor.
- ``semi-hard`` (FaceNet's rule): every anchor-positive pair, with the nearest negative that
  is still farther than the positive (d_an > d_ap); where no such negative exists, the
  farthest negative (so the triplet is easy and adds little, as in FaceNet).
- ``batch-all``: every valid triplet, averaged over the active (non-zero) ones only, so the
  many easy triplets do not dilute the gradient.

Each returns the loss and the figures logged per epoch: the fraction of active triplets
and the mean positive and negative (Euclidean) distances in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from training.choices import Mining


@dataclass
class TripletStats:
    loss: torch.Tensor
    active: float       # fraction of mined triplets with a non-zero loss
    pos_dist: float     # mean Euclidean distance over same-person pairs in the batch
    neg_dist: float     # ... over different-person pairs


def squared_distances(emb: torch.Tensor) -> torch.Tensor:
    """(B, D) unit vectors -> (B, B) squared Euclidean distances (2 - 2 cos, clamped >= 0)."""
    return (2.0 - 2.0 * emb @ emb.T).clamp_min(0.0)


def triplet_loss(emb: torch.Tensor, labels: torch.Tensor, margin: float = 0.2,
                 mining: Mining | str = Mining.batch_hard) -> TripletStats:
    """The triplet loss of ``emb`` (B, D), L2-normalised, with online ``mining``."""
    mining = Mining(mining)
    d2 = squared_distances(emb)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=emb.device)
    pos_mask, neg_mask = same & ~eye, ~same
    if not pos_mask.any() or not neg_mask.any():
        raise ValueError("a batch needs at least one positive and one negative pair")
    with torch.no_grad():
        dist = d2.detach().sqrt()
        pos_dist, neg_dist = float(dist[pos_mask].mean()), float(dist[neg_mask].mean())

    if mining is Mining.batch_hard:
        anchors = pos_mask.any(1)
        hardest_pos = d2.masked_fill(~pos_mask, float("-inf")).amax(1)
        hardest_neg = d2.masked_fill(~neg_mask, float("inf")).amin(1)
        per = F.relu(hardest_pos - hardest_neg + margin)[anchors]
        loss, active = per.mean(), float((per > 0).float().mean())
    elif mining is Mining.semi_hard:
        a, p = pos_mask.nonzero(as_tuple=True)
        d_ap = d2[a, p]
        d_an = d2[a]                                            # (T, B)
        beyond = neg_mask[a] & (d_an > d_ap[:, None].detach())
        semi = d_an.masked_fill(~beyond, float("inf")).amin(1)
        easiest = d_an.masked_fill(~neg_mask[a], float("-inf")).amax(1)
        chosen = torch.where(beyond.any(1), semi, easiest)
        per = F.relu(d_ap - chosen + margin)
        loss, active = per.mean(), float((per > 0).float().mean())
    else:
        # (A, P, N) cube: valid where (A, P) is a positive pair and (A, N) a negative one
        cube = d2[:, :, None] - d2[:, None, :] + margin
        valid = pos_mask[:, :, None] & neg_mask[:, None, :]
        per = F.relu(cube[valid])
        n_active = (per > 1e-12).sum()
        loss = per.sum() / n_active.clamp_min(1)
        active = float(n_active) / max(1, per.numel())
    return TripletStats(loss, active, pos_dist, neg_dist)


class PairHead(nn.Module):
    """Verification as binary classification (DeepFace; the course's Siamese head):
    y_hat = sigmoid(sum_k w_k |f_k(x_i) - f_k(x_j)| + b), or with ``chi_square`` the
    features (f_k(x_i) - f_k(x_j))^2 / (|f_k(x_i)| + |f_k(x_j)|). DeepFace's chi-square form
    divides by f_i + f_j of non-negative features; our encodings are signed unit vectors, so
    the denominator uses magnitudes (plus a small epsilon) to stay positive.
    Returns logits; a higher logit means "same person"."""

    def __init__(self, dim: int = 128, chi_square: bool = False) -> None:
        super().__init__()
        self.chi_square = chi_square
        self.linear = nn.Linear(dim, 1)
        with torch.no_grad():
            # start as "a small difference means the same person", with logits near zero for
            # unit encodings at distance ~1 (sum_k |a_k - b_k| is about 0.8 * sqrt(dim) * d)
            self.linear.weight.fill_(-1.0 / dim ** 0.5)
            self.linear.bias.fill_(0.8)

    def features(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.chi_square:
            return (a - b) ** 2 / (a.abs() + b.abs() + 1e-6)
        return (a - b).abs()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.linear(self.features(a, b)).squeeze(-1)


def pair_head_loss(head: nn.Module, emb: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Binary cross-entropy of ``head`` over every pair in the batch (i < j), the two classes
    weighted equally (a P x K batch has far more different-person pairs than same-person
    ones). Returns (loss, accuracy of the head's decisions at 0.5)."""
    i, j = torch.triu_indices(len(labels), len(labels), 1, device=emb.device)
    y = (labels[i] == labels[j]).float()
    logits = head(emb[i], emb[j])
    n_pos = y.sum().clamp_min(1)
    n_neg = (1 - y).sum().clamp_min(1)
    weight = torch.where(y > 0, 0.5 / n_pos, 0.5 / n_neg)
    loss = F.binary_cross_entropy_with_logits(logits, y, weight=weight, reduction="sum")
    acc = float(((logits > 0).float() == y).float().mean())
    return loss, acc
