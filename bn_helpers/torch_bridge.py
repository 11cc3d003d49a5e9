"""Your numpy BN inside a torch network: NumpyBatchNorm1d (notebook 04's capstone).

``NumpyBatchNorm1d`` is a ``torch.nn.BatchNorm1d`` whose forward and backward run the
functions of ``bn_helpers.batchnorm`` (looked up at every call, so an edit with
``%autoreload 2`` applies at once) through a ``torch.autograd.Function``:

    training  forward: batchnorm_forward (2.1), backward: batchnorm_backward_alt (3.8),
              running statistics: update_running_stats (4.1)
    eval      forward: batchnorm_inference (4.2), backward: the affine map's gradient

Because it *is* a ``torch.nn.BatchNorm1d`` (same parameters ``weight``, ``bias``, same
buffers ``running_mean``, ``running_var``, ``num_batches_tracked``), ``.to(dtype)``,
``state_dict()``, optimizers and code that looks for BN layers treat it as torch's.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bn_helpers import _validate as v
from bn_helpers import batchnorm

__all__ = ["NumpyBatchNorm1d", "learner_bn_status"]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _torch(a, like: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).to(like.dtype)


class _TrainBN(torch.autograd.Function):
    """Training-mode BN: the learner's forward (2.1) and closed-form backward (3.8)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps, caches):
        out, cache = batchnorm.batchnorm_forward(_np(x), _np(weight), _np(bias), eps)
        ctx.bn_cache = cache
        caches.append(cache)  # the caller reads the batch statistics from it
        return _torch(out, x)

    @staticmethod
    def backward(ctx, dout):
        dx, dgamma, dbeta = batchnorm.batchnorm_backward_alt(_np(dout), ctx.bn_cache)
        return (_torch(dx, dout), _torch(dgamma, dout), _torch(dbeta, dout), None,
                None)


class _EvalBN(torch.autograd.Function):
    """Eval-mode BN: the learner's inference (4.2); its gradient is the affine map's."""

    @staticmethod
    def forward(ctx, x, weight, bias, mean, var, eps):
        out = batchnorm.batchnorm_inference(_np(x), _np(weight), _np(bias), _np(mean),
                                            _np(var), eps)
        ctx.save_for_backward(x, weight, mean, var)
        ctx.eps = eps
        return _torch(out, x)

    @staticmethod
    def backward(ctx, dout):
        x, weight, mean, var = ctx.saved_tensors
        inv_std = torch.rsqrt(var + ctx.eps)
        x_hat = (x - mean) * inv_std
        return (dout * (weight * inv_std), (dout * x_hat).sum(0), dout.sum(0), None,
                None, None)


class NumpyBatchNorm1d(nn.BatchNorm1d):
    """torch.nn.BatchNorm1d(num_features, eps, momentum), computed by your batchnorm.

    Input (N, C), float32 or float64 (the layer's dtype: use ``.to(dtype)``).
    momentum=None: cumulative average of the batch statistics, as in torch.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        num_features = v.positive_int("num_features", num_features)
        eps = v.positive_float("eps", eps)
        if momentum is not None:
            momentum = v.unit_interval("momentum", momentum)
        super().__init__(num_features, eps=eps, momentum=momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 2:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a 2-D (N, C) tensor, got {got}")
        if x.dtype != self.weight.dtype:
            raise TypeError(f"x must have the layer's dtype {self.weight.dtype}, got "
                            f"{x.dtype}; use layer.to({x.dtype}) or convert x")
        if not self.training:
            return _EvalBN.apply(x, self.weight, self.bias, self.running_mean,
                                 self.running_var, self.eps)
        caches = []
        out = _TrainBN.apply(x, self.weight, self.bias, self.eps, caches)
        cache = caches[0]
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            momentum = self.momentum
            if momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked)
            new_mean, new_var = batchnorm.update_running_stats(
                _np(self.running_mean), _np(self.running_var), cache.mu, cache.var,
                cache.m, momentum)
            self.running_mean.copy_(torch.from_numpy(np.asarray(new_mean)))
            self.running_var.copy_(torch.from_numpy(np.asarray(new_var)))
        return out


def learner_bn_status() -> str | None:
    """None if the functions NumpyBatchNorm1d calls are implemented, else the first
    NotImplementedError's message (run on a tiny float64 batch)."""
    x = np.array([[0.0, 1.0], [2.0, 5.0], [1.0, -1.0]])
    g, b = np.ones(2), np.zeros(2)
    try:
        _, cache = batchnorm.batchnorm_forward(x, g, b)
        batchnorm.batchnorm_backward_alt(np.ones_like(x), cache)
        batchnorm.update_running_stats(np.zeros(2), np.ones(2), x.mean(0), x.var(0),
                                       3, 0.1)
        batchnorm.batchnorm_inference(x, g, b, np.zeros(2), np.ones(2))
    except NotImplementedError as e:
        return str(e) or "a function raises NotImplementedError"
    return None
