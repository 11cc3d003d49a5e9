"""The small MNIST conv net of notebook 10, several seeds trained as one network.

Net (one seed): conv 3x3, 1 -> 8 channels, stride 2 (28 -> 14) -> norm -> ReLU ->
conv 3x3, 8 -> 16, stride 2 (14 -> 7) -> norm -> ReLU -> flatten -> linear 784 -> 10.
The convolutions have no bias when a norm with a shift follows them.

S seeds train at once: seed s owns channels [s*C, (s+1)*C) of every layer, the
convolutions are grouped (groups=S) so no seed sees another's channels, and seed s
reads its own mini-batch (its own batch order) as input channel s. Every norm below
keeps its statistics inside one seed's channels, so the S nets are independent; the
loss is the sum of the S mean losses.

norm: "bn" (BatchNorm2d: per channel over batch and space), "ln" (GroupNorm with one
group: per example over channels and space; Wu & He 2018 treat LN this way), "gn"
(GroupNorm, 4 groups of 2 or 4 channels), "in" (InstanceNorm: per example and channel
over space), "none". ghost: BN's statistics from ghost batches of that many examples
(Hoffer et al. 2017), the gradient from the whole batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bn_helpers import _validate as v
from bn_helpers.training import _torch_threads

__all__ = ["NORMS", "GhostBatchNorm2d", "StackedConvNet", "train_stacked",
           "evaluate", "logits"]

NORMS = ("bn", "ln", "gn", "in", "none")
WIDTHS = (8, 16)
GN_GROUPS = 4


class GhostBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics come from ghost batches of `ghost`
    examples; the running statistics average the ghost batches' statistics."""

    def __init__(self, num_features: int, ghost: int):
        super().__init__(num_features)
        self.ghost = v.positive_int("ghost", ghost)

    def forward(self, x):
        if not self.training or self.ghost >= x.shape[0]:
            return super().forward(x)
        m = x.shape[0]
        if m % self.ghost:
            raise ValueError(f"the batch ({m}) must be a multiple of ghost "
                             f"({self.ghost})")
        g = x.view(m // self.ghost, self.ghost, *x.shape[1:])
        mu = g.mean(dim=(1, 3, 4), keepdim=True)
        var = g.var(dim=(1, 3, 4), unbiased=False, keepdim=True)
        with torch.no_grad():
            n = self.ghost * x.shape[2] * x.shape[3]
            self.running_mean.lerp_(mu.mean(dim=0).flatten(), self.momentum)
            self.running_var.lerp_(var.mean(dim=0).flatten() * n / (n - 1),
                                   self.momentum)
        out = ((g - mu) / torch.sqrt(var + self.eps)).view_as(x)
        return out * self.weight[:, None, None] + self.bias[:, None, None]


def _norm(kind: str, channels: int, seeds: int, ghost: int | None) -> nn.Module:
    total = channels * seeds
    if kind == "bn":
        return GhostBatchNorm2d(total, ghost) if ghost else nn.BatchNorm2d(total)
    if kind == "ln":
        return nn.GroupNorm(seeds, total)
    if kind == "gn":
        return nn.GroupNorm(seeds * GN_GROUPS, total)
    if kind == "in":
        return nn.GroupNorm(total, total)
    return nn.Identity()


class StackedConvNet(nn.Module):
    """S copies of the small conv net side by side (see the module docstring).

    Input (m, S, 28, 28): channel s is seed s's mini-batch. Output (m, S, 10) logits.
    placement: the norm "before" or "after" the ReLU.
    """

    def __init__(self, norm: str, seeds, *, placement: str = "before",
                 ghost: int | None = None):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if placement not in ("before", "after"):
            raise ValueError(f"placement must be 'before' or 'after', "
                             f"got {placement!r}")
        seeds = [v.seed(f"seeds[{i}]", s) for i, s in enumerate(seeds)]
        s_count = len(seeds)
        self.n_seeds, self.placement = s_count, placement
        c1, c2 = WIDTHS
        bias = norm == "none" or placement == "after"
        self.conv1 = nn.Conv2d(s_count, s_count * c1, 3, 2, 1, groups=s_count,
                               bias=bias)
        self.conv2 = nn.Conv2d(s_count * c1, s_count * c2, 3, 2, 1, groups=s_count,
                               bias=bias)
        self.norm1 = _norm(norm, c1, s_count, ghost)
        self.norm2 = _norm(norm, c2, s_count, ghost)
        self.head_w = nn.Parameter(torch.empty(s_count, c2 * 49, 10))
        self.head_b = nn.Parameter(torch.zeros(s_count, 10))
        with torch.no_grad():  # each seed's slice from its own generator (He init)
            for i, seed in enumerate(seeds):
                gen = torch.Generator().manual_seed(seed)
                for conv, c_out in ((self.conv1, c1), (self.conv2, c2)):
                    w = conv.weight[i * c_out:(i + 1) * c_out]
                    fan_in = w[0].numel()
                    w.copy_(torch.randn(w.shape, generator=gen) * math.sqrt(2 / fan_in))
                self.head_w[i] = (torch.randn(c2 * 49, 10, generator=gen)
                                  / math.sqrt(c2 * 49))
            for conv in (self.conv1, self.conv2):
                if conv.bias is not None:
                    conv.bias.zero_()

    def _block(self, x, conv, norm):
        z = conv(x)
        if self.placement == "before":
            return F.relu(norm(z))
        return norm(F.relu(z))

    def forward(self, x):
        h = self._block(x, self.conv1, self.norm1)
        h = self._block(h, self.conv2, self.norm2)
        h = h.reshape(x.shape[0], self.n_seeds, -1)  # (m, S, 16 * 7 * 7), seed-major
        return torch.einsum("msc,sck->msk", h, self.head_w) + self.head_b


def train_stacked(net: StackedConvNet, images, labels, *, batch_size: int, steps: int,
                  lr: float, seeds, threads: int = 1) -> np.ndarray:
    """Plain SGD for `steps` steps; seed s draws its batches from its own generator.

    images (N, 28, 28) float32, labels (N,). Returns the training loss (steps, S).
    """
    seeds = [v.seed(f"seeds[{i}]", s) for i, s in enumerate(seeds)]
    if len(seeds) != net.n_seeds:
        raise ValueError(f"seeds must list the net's {net.n_seeds} seeds, got {seeds}")
    m = v.positive_int("batch_size", batch_size)
    lr = v.positive_float("lr", lr)
    x = torch.as_tensor(images, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.int64)
    gens = [np.random.default_rng(s) for s in seeds]
    idx = torch.from_numpy(np.stack(
        [g.integers(0, len(x), size=(steps, m)) for g in gens], axis=2))  # (T, m, S)
    losses = np.empty((steps, len(seeds)))
    net.train()
    with _torch_threads(threads):
        for t in range(steps):
            batch = x[idx[t]]  # (m, S, 28, 28)
            logits = net(batch)
            loss = F.cross_entropy(logits.reshape(-1, 10), y[idx[t]].reshape(-1),
                                   reduction="none").view(m, -1).mean(dim=0)
            net.zero_grad()
            loss.sum().backward()
            with torch.no_grad():
                for p in net.parameters():
                    p -= lr * p.grad
            losses[t] = loss.detach().numpy()
    return losses


@torch.no_grad()
def evaluate(net: StackedConvNet, images, labels, *, batch_size: int = 500,
             train_mode: bool = False) -> np.ndarray:
    """(S,) accuracy on images (N, 28, 28). train_mode=True normalises with the
    statistics of each evaluation batch of `batch_size` images (BN's train mode);
    False uses the running statistics (eval mode)."""
    x = torch.as_tensor(images, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.int64)
    was = net.training
    net.train(train_mode)
    correct = torch.zeros(net.n_seeds)
    saved = {k: b.clone() for k, b in net.state_dict().items() if "running" in k}
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        batch = xb[:, None].expand(-1, net.n_seeds, -1, -1)
        pred = net(batch).argmax(dim=2)  # (n, S)
        correct += (pred == y[start:start + batch_size, None]).sum(dim=0)
    net.load_state_dict(saved, strict=False)  # evaluation must not move running stats
    net.train(was)
    return (correct / len(x)).numpy()


@torch.no_grad()
def logits(net: StackedConvNet, images, *, train_mode: bool = False) -> np.ndarray:
    """(n, S, 10) logits for one batch of images (n, 28, 28), in train mode (the batch's
    statistics) or eval mode; the running statistics are left as they were."""
    x = torch.as_tensor(images, dtype=torch.float32)
    saved = {k: b.clone() for k, b in net.state_dict().items() if "running" in k}
    was = net.training
    net.train(train_mode)
    out = net(x[:, None].expand(-1, net.n_seeds, -1, -1)).numpy()
    net.load_state_dict(saved, strict=False)
    net.train(was)
    return out
