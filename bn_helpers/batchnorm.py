"""Batch Normalization in numpy: the reference the notebooks teach and the tests check.

Notation follows Ioffe & Szegedy (2015), Alg. 1 and 2, and the course notes:

    mu_B      = 1/m sum_i x_i                      mini-batch mean (per feature)
    sigma2_B  = 1/m sum_i (x_i - mu_B)^2           biased mini-batch variance
    x_hat_i   = (x_i - mu_B) / sqrt(sigma2_B + eps)
    y_i       = gamma * x_hat_i + beta

Fully connected inputs are (N, D): one statistic per feature, averaged over the batch
(m = N). Convolutional inputs are (N, C, H, W): one statistic per channel, averaged over
N, H and W (m = N*H*W), so every location of a feature map is normalised the same way.

Forward functions return ``(out, cache)``; backward functions take ``(dout, cache)`` and
return ``(dx, dgamma, dbeta)``, as in CS231n. Arithmetic stays in the dtype of ``x``
(float32 or float64).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bn_helpers import _validate as v

__all__ = [
    "BNCache",
    "batchnorm_forward",
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "batchnorm_inference",
    "spatial_batchnorm_forward",
    "spatial_batchnorm_backward",
    "spatial_batchnorm_inference",
    "BatchNorm1d",
    "BatchNorm2d",
]

_FC_AXES = (0,)  # (N, D): reduce over the batch
# (N, C, H, W): reduce over batch and space, one statistic a channel
_CONV_AXES = (0, 2, 3)


@dataclass(frozen=True, eq=False)
class BNCache:
    """What the backward pass needs from the forward pass.

    Like torch, the cache keeps the input and per-feature statistics, not (N, D)
    temporaries; ``x_centered`` and ``x_hat`` are recomputed when asked for. ``x`` is a
    reference to the caller's array: modifying it in place before the backward pass
    changes the gradients. Per-feature arrays (``mu``, ``var``, ``std``, ``inv_std``,
    ``gamma``) have the broadcastable shape (1, D) or (1, C, 1, 1); ``m`` is the count
    each statistic averages.
    """

    x: np.ndarray  # the input x_i
    mu: np.ndarray  # mu_B
    var: np.ndarray  # sigma2_B (biased, divides by m)
    std: np.ndarray  # sqrt(sigma2_B + eps)
    inv_std: np.ndarray  # 1 / sqrt(sigma2_B + eps)
    gamma: np.ndarray
    eps: float
    m: int
    axes: tuple[int, ...]
    shift: np.ndarray  # one sample per feature; mu_B = shift + d_mu (see _centered)
    d_mu: np.ndarray

    @property
    def x_centered(self) -> np.ndarray:
        """x - mu_B (a new array)."""
        return _centered(self.x, self.shift, self.d_mu)

    @property
    def x_hat(self) -> np.ndarray:
        """(x - mu_B) / sqrt(sigma2_B + eps) (a new array)."""
        xc = self.x_centered
        xc *= self.inv_std
        return xc


def _bshape(x: np.ndarray, axes: tuple[int, ...]) -> tuple[int, ...]:
    """Shape that broadcasts a per-feature vector against x: (1, D) or (1, C, 1, 1)."""
    return tuple(1 if a in axes else n for a, n in enumerate(x.shape))


def _centered(x, shift, d_mu):
    """x - mu_B, computed as (x - shift) - d_mu with mu_B = shift + d_mu.

    In float32, x = 1e6 + noise loses the noise if we form mean(x^2) - mean(x)^2, and
    even x - mean(x) is off when mean(x) itself is rounded to float32. Subtracting a
    nearby sample is exact, and the remaining mean d_mu is small, so this is accurate.
    """
    xc = x - shift
    xc -= d_mu
    return xc


def _forward(x, gamma, beta, eps, axes):
    m = v.batch_for_training("x", x, axes)
    n_feat = x.shape[1]
    bs = _bshape(x, axes)
    gamma = v.param_vector("gamma", gamma, n_feat, x.dtype).reshape(bs)
    beta = v.param_vector("beta", beta, n_feat, x.dtype).reshape(bs)
    eps = v.positive_float("eps", eps)

    shift = x[tuple(slice(0, 1) if a in axes else slice(None) for a in range(x.ndim))]
    with np.errstate(over="ignore", invalid="ignore"):  # bad input is reported below
        out = x - shift  # becomes x - mu_B, then the output, in place (see _centered)
        d_mu = _sum(out, axes) / m
    # a NaN/inf anywhere in a feature makes its sum NaN/inf: checked for free
    v.finite_summary("x", x, d_mu)
    mu = shift + d_mu  # mu_B
    out -= d_mu
    var = np.einsum(_sumsq_spec(x.ndim, axes), out, out).reshape(bs) / m  # sigma2_B
    v.finite_summary("x", x, var)  # finite values whose squares overflow
    std = np.sqrt(var + eps)
    inv_std = 1.0 / std
    # y = gamma * (x - mu_B) / sqrt(sigma2_B + eps) + beta, as one scale and one shift
    out *= gamma * inv_std
    out += beta
    # gamma is copied: changing the caller's array in place must not change dx
    cache = BNCache(x, mu, var, std, inv_std, gamma.copy(), eps, m, axes, shift, d_mu)
    return out, cache


def _sum(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Sum over `axes` with keepdims, as matrix-vector products (BLAS is fast)."""
    if axes == _FC_AXES:
        return (np.ones(a.shape[0], a.dtype) @ a)[None, :]
    n, c = a.shape[:2]
    per_map = a.reshape(n, c, -1) @ np.ones(a[0, 0].size, a.dtype)  # (N, C)
    return (np.ones(n, a.dtype) @ per_map).reshape(1, c, 1, 1)


def _sumsq_spec(ndim: int, axes: tuple[int, ...]) -> str:
    """einsum spec for sum over `axes` of a*b, e.g. 'ij,ij->j' or 'ijkl,ijkl->j'."""
    letters = "ijkl"[:ndim]
    kept = "".join(c for a, c in enumerate(letters) if a not in axes)
    return f"{letters},{letters}->{kept}"


def _check_cache(cache) -> BNCache:
    if not isinstance(cache, BNCache):
        raise TypeError(
            f"cache must be the BNCache returned by a batchnorm forward function, "
            f"got {type(cache).__name__}"
        )
    return cache


def _backward_staged(dout, cache):
    c = _check_cache(cache)
    dout = v.grad_like(dout, c.x.shape, c.x.dtype, finite=False)
    ax, m = c.axes, c.m
    xc = c.x_centered  # centred:    xc = x - mu
    x_hat = xc * c.inv_std  # normalised: x_hat = xc * inv_std
    # Walk the graph from the output back to x, one node at a time.
    # shift:      y = s + beta                 -> ds = dout, dbeta = sum dout
    with np.errstate(over="ignore", invalid="ignore"):  # bad input is reported below
        dbeta = dout.sum(axis=ax)
    v.finite_summary("dout", dout, dbeta)
    ds = dout
    # scale:      s = gamma * x_hat   -> dgamma = sum ds*x_hat, dx_hat = ds*gamma
    dgamma = (ds * x_hat).sum(axis=ax)
    dx_hat = ds * c.gamma
    # normalised: x_hat = xc * inv_std         (xc and inv_std both feed x_hat)
    dinv_std = (dx_hat * xc).sum(axis=ax, keepdims=True)
    dxc_direct = dx_hat * c.inv_std
    # inverse:    inv_std = 1 / std
    dstd = -dinv_std / c.std**2
    # std:        std = sqrt(var + eps)
    dvar = dstd * 0.5 / c.std
    # variance:   var = 1/m sum xc^2           -> each xc_i gets 2 xc_i / m * dvar
    dxc_via_var = (2.0 / m) * xc * dvar
    dxc = dxc_direct + dxc_via_var
    # centred:    xc = x - mu                  (x feeds xc directly and through mu)
    dmu = -dxc.sum(axis=ax, keepdims=True)
    # mean:       mu = 1/m sum x               -> each x_i gets dmu / m
    dx = dxc + dmu / m
    return dx, dgamma, dbeta


def _backward_alt(dout, cache):
    c = _check_cache(cache)
    dout = v.grad_like(dout, c.x.shape, c.x.dtype, finite=False)
    ax, m = c.axes, c.m
    with np.errstate(over="ignore", invalid="ignore"):  # bad input is reported below
        dbeta = _sum(dout, ax)
    v.finite_summary("dout", dout, dbeta)
    # dx_i = gamma / (m sqrt(var + eps))
    #        * (m dout_i - sum_j dout_j - x_hat_i sum_j dout_j x_hat_j)
    dx = _centered(c.x, c.shift, c.d_mu)  # x - mu_B; becomes dx, in place
    dgamma = np.einsum(_sumsq_spec(dout.ndim, ax), dout, dx).reshape(dbeta.shape)
    dgamma *= c.inv_std  # sum dout * x_hat = inv_std * sum dout * (x - mu_B)
    dx *= -c.inv_std * dgamma / m  # - x_hat_i sum_j dout_j x_hat_j / m
    dx += dout
    dx -= dbeta / m
    dx *= c.gamma * c.inv_std
    return dx, dgamma.reshape(-1), dbeta.reshape(-1)


def _inference(x, gamma, beta, mean, var, eps, axes):
    n_feat = x.shape[1]
    bs = _bshape(x, axes)
    gamma = v.param_vector("gamma", gamma, n_feat, x.dtype)
    beta = v.param_vector("beta", beta, n_feat, x.dtype)
    mean = v.param_vector("mean", mean, n_feat, x.dtype)
    var = v.param_vector("var", var, n_feat, x.dtype)
    if (var < 0).any():
        raise ValueError(f"var must be >= 0 (a variance), got min {var.min()!r}")
    eps = v.positive_float("eps", eps)
    # Alg. 2, line 11: y = gamma/sqrt(Var+eps) * x + (beta - gamma*E[x]/sqrt(Var+eps))
    scale = gamma / np.sqrt(var + eps)
    shift = beta - mean * scale
    return x * scale.reshape(bs) + shift.reshape(bs)


# ------------------------------------------------------------ fully connected (N, D)


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Training-mode BN (Alg. 1) with mini-batch statistics.

    x: (N, D) float32/float64 with N >= 2; gamma, beta: (D,); eps > 0.
    Returns out (N, D) and a BNCache for the backward pass.
    """
    v.float_array("x", x, ndim=2, finite=False)
    return _forward(x, gamma, beta, eps, _FC_AXES)


def batchnorm_backward(dout, cache):
    """Staged backward: node by node through the computational graph.

    dout: (N, D) upstream gradient dl/dy. Returns dx (N, D), dgamma (D,), dbeta (D,).
    """
    return _backward_staged(dout, _require_axes(cache, _FC_AXES))


def batchnorm_backward_alt(dout, cache):
    """Closed-form backward, fewer passes over the data than the staged one:

        dx = gamma / (m sigma) * (m dout - sum dout - x_hat * sum(dout * x_hat))

    with sigma = sqrt(sigma2_B + eps). Same inputs and outputs as batchnorm_backward.
    """
    return _backward_alt(dout, _require_axes(cache, _FC_AXES))


def batchnorm_inference(x, gamma, beta, mean, var, eps=1e-5):
    """Inference-mode BN (Alg. 2): one affine map per feature, population statistics.

    x: (N, D) with N >= 1; gamma, beta, mean, var: (D,); var >= 0 (the unbiased
    estimate). Output depends on each row alone:
    y = gamma * (x - mean) / sqrt(var + eps) + beta.
    """
    v.float_array("x", x, ndim=2)
    return _inference(x, gamma, beta, mean, var, eps, _FC_AXES)


# ------------------------------------------------------- convolutional (N, C, H, W)


def spatial_batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Training-mode BN for conv feature maps: (mu, sigma2, gamma, beta) per channel.

    x: (N, C, H, W); gamma, beta: (C,). Statistics over N, H, W (m = N*H*W).
    """
    v.float_array("x", x, ndim=4, finite=False)
    return _forward(x, gamma, beta, eps, _CONV_AXES)


def spatial_batchnorm_backward(dout, cache):
    """Backward of spatial_batchnorm_forward: dx (N,C,H,W), dgamma (C,), dbeta (C,)."""
    return _backward_alt(dout, _require_axes(cache, _CONV_AXES))


def spatial_batchnorm_inference(x, gamma, beta, mean, var, eps=1e-5):
    """Inference-mode BN for (N, C, H, W) with per-channel population statistics."""
    v.float_array("x", x, ndim=4)
    return _inference(x, gamma, beta, mean, var, eps, _CONV_AXES)


def _require_axes(cache, axes):
    c = _check_cache(cache)
    if c.axes != axes:
        kind = {_FC_AXES: "batchnorm_forward", _CONV_AXES: "spatial_batchnorm_forward"}
        raise ValueError(
            f"cache came from {kind.get(c.axes, c.axes)}, but this backward expects "
            f"one from {kind[axes]}"
        )
    return c


# ---------------------------------------------------- layers with running statistics


class _BatchNorm:
    _axes: tuple[int, ...] = ()
    _ndim = 0

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=np.float64):
        self.num_features = v.positive_int("num_features", num_features)
        self.eps = v.positive_float("eps", eps)
        self.momentum = v.unit_interval("momentum", momentum)
        if np.dtype(dtype).type not in v.FLOAT_DTYPES:
            raise TypeError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
        self.dtype = np.dtype(dtype)
        self.gamma = np.ones(num_features, dtype=self.dtype)
        self.beta = np.zeros(num_features, dtype=self.dtype)
        # buffers, trained with a running 'momentum update' (not by gradient descent)
        self.running_mean = np.zeros(num_features, dtype=self.dtype)
        self.running_var = np.ones(num_features, dtype=self.dtype)
        self.num_batches_tracked = 0
        self.training = True
        self.dgamma = self.dbeta = None
        # BNCache (train mode) or (x_hat, scale) (eval mode) of the last forward
        self._cache = None

    def train(self, mode: bool = True):
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def _check_x(self, x):
        v.float_array("x", x, ndim=self._ndim, finite=not self.training)
        if x.dtype != self.dtype:
            raise TypeError(
                f"x must have the layer's dtype {self.dtype}, got {x.dtype}; create "
                f"the layer with dtype=np.{x.dtype} or convert x"
            )
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"x must have {self.num_features} features/channels on axis 1, "
                f"got shape {x.shape}"
            )
        return x

    def forward(self, x):
        """Train mode: batch statistics, and update the running estimates.

        Eval mode: the running estimates (population statistics, Alg. 2).
        """
        self._check_x(x)
        if not self.training:
            bs = _bshape(x, self._axes)
            inv_std = (1.0 / np.sqrt(self.running_var + self.eps)).reshape(bs)
            x_hat = (x - self.running_mean.reshape(bs)) * inv_std
            self._cache = (x_hat, self.gamma.reshape(bs) * inv_std)
            stats = (self.running_mean, self.running_var)
            return _inference(x, self.gamma, self.beta, *stats, self.eps, self._axes)
        out, cache = _forward(x, self.gamma, self.beta, self.eps, self._axes)
        # torch convention: new = (1 - momentum) * old + momentum * batch statistic,
        # and the running variance is the unbiased m/(m-1) * sigma2_B (Alg. 2, l. 10).
        mom, m = self.momentum, cache.m
        batch_mean = cache.mu.reshape(-1).astype(self.dtype)
        batch_var = (cache.var.reshape(-1) * (m / (m - 1))).astype(self.dtype)
        self.running_mean = (1 - mom) * self.running_mean + mom * batch_mean
        self.running_var = (1 - mom) * self.running_var + mom * batch_var
        self.num_batches_tracked += 1
        self._cache = cache
        return out

    __call__ = forward

    def backward(self, dout):
        """Returns dx; stores dgamma and dbeta on the layer."""
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        if isinstance(self._cache, BNCache):
            dx, self.dgamma, self.dbeta = _backward_alt(dout, self._cache)
            return dx
        # eval mode: the layer is a fixed affine map y = scale * x + shift
        x_hat, scale = self._cache
        dout = v.grad_like(dout, x_hat.shape, x_hat.dtype)
        self.dgamma = (dout * x_hat).sum(axis=self._axes)
        self.dbeta = dout.sum(axis=self._axes)
        return dout * scale

    def __repr__(self):
        name = type(self).__name__
        return (
            f"{name}({self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"training={self.training})"
        )


class BatchNorm1d(_BatchNorm):
    """numpy twin of torch.nn.BatchNorm1d for (N, D) inputs, with running stats."""

    _axes = _FC_AXES
    _ndim = 2


class BatchNorm2d(_BatchNorm):
    """numpy twin of torch.nn.BatchNorm2d for (N, C, H, W): per-channel statistics."""

    _axes = _CONV_AXES
    _ndim = 4
