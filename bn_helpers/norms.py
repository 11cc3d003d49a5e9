"""LayerNorm and GroupNorm in numpy, forward and backward, built on the learner's BN.

Every normalisation of the BN family is Alg. 1 over a different set of axes: BN takes
the statistics of each channel over the batch (and space), LayerNorm (Ba et al. 2016)
those of each example over its features, GroupNorm (Wu & He 2018) those of each example
over a group of channels and space, InstanceNorm those of each example and channel over
space.
So each is ``bn.batchnorm_forward`` / ``bn.batchnorm_backward`` (notebooks 02, 03)
applied to a reshaped, transposed view in which the normalised axis comes first, with
gamma = 1 and beta = 0; the per-channel affine map follows. The functions look the
learner's functions up at call time, so what notebook 02/03 built is what runs here.

    out, cache = group_norm_forward(x, gamma, beta, groups=2)   # x (N, C, H, W)
    dx, dgamma, dbeta = group_norm_backward(dout, cache)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bn_helpers import _validate as v
from bn_helpers import batchnorm as bn

__all__ = ["NormCache", "layer_norm_forward", "layer_norm_backward",
           "group_norm_forward", "group_norm_backward"]


@dataclass(frozen=True, eq=False)
class NormCache:
    """What the backward pass needs: BN's cache of the transposed view, x_hat in the
    input's shape, gamma, and the shapes to undo the view."""

    bn_cache: object
    x_hat: np.ndarray
    gamma: np.ndarray
    groups: int | None


def _as_rows(x: np.ndarray, groups: int | None) -> np.ndarray:
    """(N, D) -> (D, N) for LayerNorm; (N, C, ...) -> (C/G*..., N*G) for GroupNorm:
    each column is one set of values that share a mean and a variance."""
    if groups is None:
        return x.T
    n = x.shape[0]
    return x.reshape(n * groups, -1).T


def _from_rows(rows: np.ndarray, shape, groups: int | None) -> np.ndarray:
    return rows.T if groups is None else rows.T.reshape(shape)


def _affine_shape(x: np.ndarray) -> tuple[int, ...]:
    """gamma (C,) broadcast over (N, C, ...) or (N, D)."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _checked(x, gamma, beta, eps, groups):
    x = v.float_array("x", x, min_ndim=2).astype(np.float64, copy=False)
    c = x.shape[1]
    gamma = v.param_vector("gamma", gamma, c, np.float64)
    beta = v.param_vector("beta", beta, c, np.float64)
    eps = v.positive_float("eps", eps)
    if groups is not None:
        groups = v.positive_int("groups", groups)
        if c % groups:
            raise ValueError(f"groups must divide the {c} channels of x, got {groups}")
    if x.size // x.shape[0] // (groups or 1) < 2:
        raise ValueError(f"each normalised set needs at least 2 values, x has shape "
                         f"{x.shape}")
    return x, gamma, beta, eps, groups


def _forward(x, gamma, beta, eps, groups):
    x, gamma, beta, eps, groups = _checked(x, gamma, beta, eps, groups)
    rows = _as_rows(x, groups)
    ones, zeros = np.ones(rows.shape[1]), np.zeros(rows.shape[1])
    x_hat_rows, bn_cache = bn.batchnorm_forward(rows, ones, zeros, eps)  # Alg. 1
    x_hat = _from_rows(x_hat_rows, x.shape, groups)
    shape = _affine_shape(x)
    out = gamma.reshape(shape) * x_hat + beta.reshape(shape)
    return out, NormCache(bn_cache, x_hat, gamma, groups)


def _backward(dout, cache: NormCache):
    if not isinstance(cache, NormCache):
        raise TypeError(f"cache must be the NormCache of a norms forward function, "
                        f"got {type(cache).__name__}")
    dout = v.float_array("dout", dout).astype(np.float64, copy=False)
    if dout.shape != cache.x_hat.shape:
        raise ValueError(f"dout must have the forward output's shape "
                         f"{cache.x_hat.shape}, got {dout.shape}")
    axes = (0,) + tuple(range(2, dout.ndim))  # all but the channel axis
    dgamma = (dout * cache.x_hat).sum(axis=axes)
    dbeta = dout.sum(axis=axes)
    dx_hat = dout * cache.gamma.reshape(_affine_shape(dout))
    dx_rows, _, _ = bn.batchnorm_backward(_as_rows(dx_hat, cache.groups),
                                          cache.bn_cache)
    return _from_rows(dx_rows, dout.shape, cache.groups), dgamma, dbeta


def layer_norm_forward(x, gamma, beta, eps=1e-5):
    """LayerNorm of x (N, D): each row normalised over its D features; gamma, beta (D,).
    Returns out (N, D) and a NormCache. (torch: F.layer_norm(x, (D,), gamma, beta))"""
    return _forward(x, gamma, beta, eps, None)


def layer_norm_backward(dout, cache):
    """(dx, dgamma, dbeta) for layer_norm_forward's output gradient dout (N, D)."""
    return _backward(dout, cache)


def group_norm_forward(x, gamma, beta, groups, eps=1e-5):
    """GroupNorm of x (N, C, ...): each example's channels split into `groups` groups
    of C/groups channels, each group normalised over its channels and positions;
    gamma, beta (C,). groups=1: LayerNorm over (C, H, W); groups=C: InstanceNorm.
    Returns out (x's shape) and a NormCache. (torch: F.group_norm)"""
    if groups is None:
        raise TypeError("groups must be an int dividing the channels, got None")
    return _forward(x, gamma, beta, eps, groups)


def group_norm_backward(dout, cache):
    """(dx, dgamma, dbeta) for group_norm_forward's output gradient dout."""
    return _backward(dout, cache)
