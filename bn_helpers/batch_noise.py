"""How noisy are BN's batch statistics, and what do small batches do to a BN network?

Plumbing for notebook 08. Mini-batches here are drawn the simple way the formulas
assume: each batch is m rows picked independently and uniformly (with replacement)::

    idx = rng.integers(0, len(x), size=(n_batches, m))  # one call, all batches

    mu_B, var_B = batch_statistics(x, m=8, n_batches=1000, rng=rng)  # each (1000, D)
    acc = train_mode_accuracy(net, xt, yt, batch_size=8, seed=0)  # BN with batch stats
    precise = with_population_stats(net, x_train)  # Alg. 2: stats recomputed, eval mode
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from bn_helpers import _validate as v

__all__ = ["batch_statistics", "bn_inputs", "eval_accuracy", "train_mode_accuracy",
           "with_population_stats"]

_CHUNK_ROWS = 2**16  # rows gathered at a time: bounds memory for large m * n_batches


def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng"
                        f"(seed)), got {type(rng).__name__}")
    return rng


def batch_statistics(x, m: int, n_batches: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Batch means mu_B and biased batch variances sigma_B^2 of random mini-batches.

    x: (N, D) float array, one row per example. Draws
    ``idx = rng.integers(0, N, size=(n_batches, m))`` (rows independent, with
    replacement) and returns (mu_B, var_B), each (n_batches, D) float64, where
    ``mu_B[k] = x[idx[k]].mean(0)`` and ``var_B[k] = x[idx[k]].var(0)`` (divides by m).
    Rows are gathered about 65k at a time, so memory stays small for any m.
    """
    x = v.float_array("x", x, ndim=2)
    m, n_batches = v.positive_int("m", m), v.positive_int("n_batches", n_batches)
    if m < 2:
        raise ValueError(f"m must be >= 2 (a batch variance needs 2 rows), got {m}")
    idx = _check_rng(rng).integers(0, len(x), size=(n_batches, m))
    mu_B = np.empty((n_batches, x.shape[1]))
    var_B = np.empty_like(mu_B)
    per_chunk = max(1, _CHUNK_ROWS // m)
    for start in range(0, n_batches, per_chunk):
        rows = x[idx[start:start + per_chunk]].astype(np.float64)  # (k, m, D)
        mu_B[start:start + per_chunk] = rows.mean(axis=1)
        var_B[start:start + per_chunk] = rows.var(axis=1)
    return mu_B, var_B


def _check_net(net) -> nn.Module:
    if not isinstance(net, nn.Module):
        raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__}")
    return net


def _bn_layers(net: nn.Module) -> list[nn.BatchNorm1d]:
    layers = [mod for mod in net.modules() if isinstance(mod, nn.BatchNorm1d)]
    if not layers:
        raise ValueError("net has no BatchNorm1d layer")
    return layers


def _tensors(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(v.float_array("x", x, ndim=2)).float()
    if not isinstance(y, np.ndarray) or y.shape != (len(x),):
        raise ValueError(f"y must be a numpy array of {len(x)} labels, got "
                         f"{type(y).__name__} of shape {getattr(y, 'shape', None)}")
    return x, torch.from_numpy(y).long()


@torch.no_grad()
def bn_inputs(net, x) -> list[np.ndarray]:
    """What each BatchNorm1d layer of `net` receives in eval mode, for inputs x (N, D).

    Returns one float64 array (N, H_l) per BN layer, in forward order: the inputs whose
    mean and variance the layer's running statistics are meant to estimate. Uses
    forward pre-hooks on a copy of `net`, so `net` itself is left untouched.
    """
    net = copy.deepcopy(_check_net(net)).eval()
    x = torch.from_numpy(v.float_array("x", x, ndim=2)).float()
    captured: list[np.ndarray] = []
    for layer in _bn_layers(net):
        layer.register_forward_pre_hook(
            lambda _mod, inputs: captured.append(inputs[0].double().numpy()))
    net(x)
    return captured


@torch.no_grad()
def eval_accuracy(net, x, y) -> float:
    """Accuracy of `net` in eval mode (BN with stored statistics) on x (N, D), y (N,).

    The net's mode is restored afterwards.
    """
    net = _check_net(net)
    x, y = _tensors(x, y)
    was_training = net.training
    try:
        return float((net.eval()(x).argmax(1) == y).double().mean())
    finally:
        net.train(was_training)


@torch.no_grad()
def train_mode_accuracy(net, x, y, batch_size: int, seed: int) -> float:
    """Accuracy when x (N, D), y (N,) are fed in train mode, in random batches.

    Every BN layer normalises with the statistics of the batch it is given, as during
    training. The N // batch_size full batches of a seeded permutation are used (the
    remainder is dropped); a copy of `net` is used, so its running statistics are kept.
    """
    net = copy.deepcopy(_check_net(net)).train()
    x, y = _tensors(x, y)
    batch_size = v.positive_int("batch_size", batch_size)
    if not 2 <= batch_size <= len(x):
        raise ValueError(f"batch_size must be in [2, {len(x)}], got {batch_size}")
    gen = torch.Generator().manual_seed(v.seed("seed", seed))
    order = torch.randperm(len(x), generator=gen)[:len(x) // batch_size * batch_size]
    logits = torch.cat([net(x[b]) for b in order.split(batch_size)])
    return float((logits.argmax(1) == y[order]).double().mean())


@torch.no_grad()
def with_population_stats(net, x, batch_size: int = 1000) -> nn.Module:
    """A copy of `net` in eval mode whose BN statistics are recomputed on x (N, D).

    Algorithm 2 of the paper ("precise BN"): with the trained parameters frozen, every
    BatchNorm layer averages the batch means and the unbiased batch variances of the
    consecutive batches of x (torch's momentum=None: a plain cumulative average), in
    place of the running averages collected during training.
    """
    net = copy.deepcopy(_check_net(net))
    x = torch.from_numpy(v.float_array("x", x, ndim=2)).float()
    batch_size = v.positive_int("batch_size", batch_size)
    if not 2 <= batch_size <= len(x):
        raise ValueError(f"batch_size must be in [2, {len(x)}], got {batch_size}")
    for layer in _bn_layers(net):
        layer.reset_running_stats()
        layer.momentum = None
    net.train()
    for b in x.split(batch_size):
        if len(b) >= 2:
            net(b)
    return net.eval()
