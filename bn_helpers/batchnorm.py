"""Batch Normalization in numpy: the code the learner writes in notebooks 02-05.

Notation follows Ioffe & Szegedy (2015), Alg. 1 and 2, and the course notes:

    mu_B      = 1/m sum_i x_i                      mini-batch mean (per feature)
    sigma2_B  = 1/m sum_i (x_i - mu_B)^2           biased mini-batch variance
    x_hat_i   = (x_i - mu_B) / sqrt(sigma2_B + eps)
    y_i       = gamma * x_hat_i + beta

Fully connected inputs are (N, D): one statistic per feature, averaged over the batch
(m = N). Convolutional inputs are (N, C, H, W): one statistic per channel, averaged over
N, H and W (m = N*H*W), so every location of a feature map is normalised the same way.

Each exercise is a solution region (marked as CONTRACTS.md says), the last thing in
its function; the student edition replaces it by a NotImplementedError:

    2.1 batchnorm_forward            3.7 batchnorm_backward   3.8 batchnorm_backward_alt
    4.1 update_running_stats         4.2 batchnorm_inference  4.3 _BatchNorm.forward
    5.1 spatial_batchnorm_forward    5.2 spatial_batchnorm_backward

What is not the lesson stays outside the regions: argument checks with clear messages,
and one numerical step for float32 (`_recentred_forward`, `_recentred_inference`).
Forward functions return ``(out, cache)``; backward functions take ``(dout, cache)`` and
return ``(dx, dgamma, dbeta)``, as in CS231n. Arithmetic stays in the dtype of ``x``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from bn_helpers import _validate as v

__all__ = [
    "BNCache",
    "batchnorm_forward",
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "update_running_stats",
    "batchnorm_inference",
    "spatial_batchnorm_forward",
    "spatial_batchnorm_backward",
    "spatial_batchnorm_inference",
    "BatchNorm1d",
    "BatchNorm2d",
]


@dataclass(eq=False)
class BNCache:
    """What the backward pass needs from the forward pass, filled by batchnorm_forward.

    x_hat (m, D) is the normalised input; mu, var, inv_std and gamma are per-feature
    (D,): mu_B, the biased sigma2_B, 1/sqrt(sigma2_B + eps) and the scale. ``m``,
    ``std`` and ``x_centered`` are derived from these.
    """

    x_hat: np.ndarray  # (m, D) normalised input
    mu: np.ndarray  # mu_B
    var: np.ndarray  # sigma2_B (biased, divides by m)
    inv_std: np.ndarray  # 1 / sqrt(sigma2_B + eps)
    gamma: np.ndarray
    eps: float

    @property
    def m(self) -> int:
        """Number of values each statistic averages (the batch size for (N, D))."""
        return self.x_hat.shape[0]

    @property
    def std(self) -> np.ndarray:
        """sqrt(sigma2_B + eps), (D,)."""
        return np.sqrt(self.var + self.eps)

    @property
    def x_centered(self) -> np.ndarray:
        """x - mu_B (a new array), recovered as x_hat * std."""
        return self.x_hat * self.std


# ------------------------------------------------- argument checks (not the lesson)


def _checked_forward_args(x, gamma, beta, eps):
    """Validate batchnorm_forward's arguments; gamma is copied (see BNCache).

    Also says whether x is float32 far from zero (see _recentred_forward).
    """
    v.float_array("x", x, ndim=2, finite=False)
    m = v.batch_for_training("x", x, (0,))
    gamma = v.param_vector("gamma", gamma, x.shape[1], x.dtype)
    beta = v.param_vector("beta", beta, x.shape[1], x.dtype)
    eps = v.eps_for_dtype("eps", eps, x.dtype)
    # max and min are NaN/inf if any value is: one cheap pass finds bad values, and
    # the spread bounds the squared deviations that the variance sums
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: reported below
        spread = x.max(axis=0).astype(np.float64) - x.min(axis=0)
    if not np.isfinite(spread).all():
        v.float_array("x", x)  # raises with a count of NaN/inf if there are any
    if not np.isfinite(spread).all() or m * spread.max() ** 2 > np.finfo(x.dtype).max:
        raise ValueError(
            f"x is too large for {x.dtype}: its squared deviations from the mean "
            f"overflow (max |x| = {float(np.abs(x).max()):.3g}); rescale the input "
            f"or use float64"
        )
    # float32 x whose offset dwarfs its spread: mu_B's rounding would show in x_hat
    far = x.dtype == np.float32 and bool((np.abs(x[0]) > 8 * spread).any())
    # a copy: an optimiser step on the caller's gamma before backward must not change dx
    return x, gamma.copy(), beta, eps, far


def _checked_cache(cache) -> BNCache:
    # by its fields, not isinstance: %autoreload 2 makes a new BNCache class, and a
    # cache made before an edit must still be accepted
    fields = ("x_hat", "mu", "var", "inv_std", "gamma", "eps")
    if not all(hasattr(cache, f) for f in fields) or not isinstance(
            cache.x_hat, np.ndarray) or cache.x_hat.ndim != 2:
        raise TypeError(
            f"cache must be the BNCache returned by batchnorm_forward, got "
            f"{type(cache).__name__}"
        )
    return cache


def _checked_backward_args(dout, cache):
    """Validate (dout, cache); refuse a dout whose gradients could overflow."""
    c = _checked_cache(cache)
    v.float_array("dout", dout, finite=False)
    if dout.shape != c.x_hat.shape:
        hint = "; was the cache made from a different x?"
        if dout.ndim == 4:
            hint = ("; for (N, C, H, W) use spatial_batchnorm_backward with the cache "
                    "of spatial_batchnorm_forward")
        raise ValueError(
            f"dout must have the shape of the forward output {c.x_hat.shape}, got "
            f"shape {dout.shape}{hint}"
        )
    dout = dout.astype(c.x_hat.dtype, copy=False)
    # every intermediate of both backward passes is at most this large (|x_hat| <=
    # sqrt(m), |x - mu| <= sqrt(m) std): above the dtype's range, refuse rather than
    # return inf or NaN
    m = c.m
    # max and min are NaN/inf if any value is: one pass each, no temporary
    largest = max(float(dout.max()), -float(dout.min()))
    if not np.isfinite(largest):
        v.float_array("dout", dout)  # raises with a count of NaN/inf
    scale = max(1.0, float(np.max(c.std)), float(np.max(c.inv_std)))
    gamma_max = max(1.0, float(np.abs(c.gamma).max()))
    bound = largest * m * np.sqrt(m) * 4 * gamma_max * scale
    if bound > np.finfo(dout.dtype).max:
        raise ValueError(
            f"dout is too large for {dout.dtype}: dx or dgamma could overflow (max "
            f"|dout| = {largest:.3g}, std of x up to "
            f"{float(np.max(c.std)):.3g}); rescale the loss or use float64"
        )
    return dout, c


# -------------------------------------------------- float32 step (not the lesson)


def _recentred_forward(x, gamma, beta, eps):
    """batchnorm_forward on x minus one sample per feature (float32 far from zero).

    In float32, x = 1e6 + noise: mu_B is rounded to a multiple of 0.06, and x - mu_B
    (and so x_hat) is off by that much: about 1e-7 * |mu_B| / std, which matters when
    the offset is several times the spread. BN's output and x_hat do not change when
    a constant is added to a feature, and subtracting a nearby sample is exact, so we
    run the lesson on x - x[0] (whose mean is small and precise) and add x[0] back to
    the cached mean only.
    """
    shift = x[:1]
    out, cache = batchnorm_forward(x - shift, gamma, beta, eps)
    mu = getattr(cache, "mu", None)
    if isinstance(mu, np.ndarray) and mu.size == shift.size:
        cache.mu = mu + shift.reshape(mu.shape)
    return out, cache


def _recentred_inference(x, gamma, beta, mean, var, eps):
    """batchnorm_inference on x - mean with mean 0 (float32, |mean| >> std).

    The folded map x * scale + (beta - mean * scale) adds two large, nearly equal
    terms when |mean| >> std (x = 1e4 + 0.1 z: relative error 6e-3 in float32).
    Subtracting mean first gives (x - mean) * scale + beta: the same map, accurate.
    """
    return batchnorm_inference(x - mean, gamma, beta, np.zeros_like(mean), var, eps)


# ------------------------------------------------------------ fully connected (N, D)


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Training-mode BN (Alg. 1) with mini-batch statistics.

    x: (N, D) float32/float64 with N >= 2; gamma, beta: (D,); eps > 0.
    Returns out (N, D) and a BNCache(x_hat, mu, var, inv_std, gamma, eps).
    """
    x, gamma, beta, eps, far_from_zero = _checked_forward_args(x, gamma, beta, eps)
    if far_from_zero:  # float32 only: accuracy, not the lesson
        return _recentred_forward(x, gamma, beta, eps)
    # Exercise 2.1 (notebook 02): Alg. 1, line by line.
    ### BEGIN SOLUTION
    mu = x.mean(axis=0)  # mini-batch mean
    xc = x - mu  # centred
    var = (xc**2).mean(axis=0)  # mini-batch variance (biased: divide by m)
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = xc * inv_std  # normalised
    out = gamma * x_hat + beta  # scale and shift
    cache = BNCache(x_hat=x_hat, mu=mu, var=var, inv_std=inv_std, gamma=gamma, eps=eps)
    return out, cache
    ### END SOLUTION


def batchnorm_backward(dout, cache):
    """Staged backward: node by node through the computational graph.

    dout: (N, D) upstream gradient dl/dy; cache: the BNCache of batchnorm_forward.
    Returns dx (N, D), dgamma (D,), dbeta (D,).
    """
    dout, cache = _checked_backward_args(dout, cache)
    # Exercise 3.7 (notebook 03): walk the graph from the output back to x.
    ### BEGIN SOLUTION
    xc, std, inv_std, m = cache.x_centered, cache.std, cache.inv_std, cache.m
    gamma, x_hat = cache.gamma, cache.x_hat
    # shift: y = s + beta
    dbeta = dout.sum(axis=0)
    ds = dout
    # scale: s = gamma * x_hat
    dgamma = (ds * x_hat).sum(axis=0)
    dx_hat = gamma * ds
    # normalised: x_hat = xc * inv_std (xc and inv_std both feed x_hat)
    dinv_std = (dx_hat * xc).sum(axis=0)
    dxc = dx_hat * inv_std
    # inverse: inv_std = 1 / std
    dstd = -dinv_std / std**2
    # std: std = sqrt(var + eps)
    dvar = dstd / (2 * std)
    # variance: var = 1/m sum xc^2; xc also fed 'normalised', so the gradients add
    dxc = dxc + 2 * xc * dvar / m
    # centred: xc = x - mu
    dmu = -dxc.sum(axis=0)
    # mean: mu = 1/m sum x; x also fed 'centred', so the gradients add
    dx = dxc + dmu / m
    return dx, dgamma, dbeta
    ### END SOLUTION


# compgraph labels its edges with the variable names of the staged code
# (tests/test_compgraph.py reads this function's source)
_backward_staged = batchnorm_backward


def batchnorm_backward_alt(dout, cache):
    """Closed-form backward, fewer passes over the data than the staged one:

        dx = gamma / (m sigma) * (m dout - sum dout - x_hat * sum(dout * x_hat))

    with sigma = sqrt(sigma2_B + eps). Same inputs and outputs as batchnorm_backward.
    """
    dout, cache = _checked_backward_args(dout, cache)
    # Exercise 3.8 (notebook 03): the closed form you derived.
    ### BEGIN SOLUTION
    m, x_hat = cache.m, cache.x_hat
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx = cache.gamma * cache.inv_std / m * (m * dout - dbeta - x_hat * dgamma)
    return dx, dgamma, dbeta
    ### END SOLUTION


def update_running_stats(running_mean, running_var, batch_mean, batch_var, m,
                         momentum):
    """One training-step update of BN's running statistics (torch's convention).

    running_mean, running_var: (D,); batch_mean, batch_var: (D,) mu_B and the biased
    sigma2_B of a batch of m >= 2 values per feature; momentum in [0, 1].
    new = (1 - momentum) * old + momentum * batch statistic, with the unbiased batch
    variance m/(m-1) sigma2_B (Alg. 2, line 10). Returns (new_mean, new_var), (D,).
    """
    running_mean, running_var, batch_mean, batch_var, m, momentum = (
        _checked_running_args(running_mean, running_var, batch_mean, batch_var, m,
                              momentum))
    # Exercise 4.1 (notebook 04): the running averages, torch's convention.
    ### BEGIN SOLUTION
    unbiased_var = batch_var * m / (m - 1)
    new_mean = (1 - momentum) * running_mean + momentum * batch_mean
    new_var = (1 - momentum) * running_var + momentum * unbiased_var
    return new_mean, new_var
    ### END SOLUTION


def _checked_running_args(running_mean, running_var, batch_mean, batch_var, m,
                          momentum):
    v.float_array("running_mean", running_mean, ndim=1)
    d, dtype = running_mean.size, running_mean.dtype
    running_var = v.param_vector("running_var", running_var, d, dtype)
    # the batch statistics may come as (D,) or as (1, D) (mean with keepdims=True)
    stats = []
    for name, a in (("batch_mean", batch_mean), ("batch_var", batch_var)):
        v.float_array(name, a)
        if a.size != d or a.ndim > 2:
            raise ValueError(f"{name} must have shape ({d},), one value per feature, "
                             f"got shape {a.shape}")
        stats.append(a.reshape(d).astype(dtype, copy=False))
    m = v.positive_int("m", m)
    if m < 2:
        raise ValueError(f"m must be >= 2 (the unbiased variance divides by m - 1), "
                         f"got {m}")
    momentum = v.unit_interval("momentum", momentum)
    return running_mean, running_var, stats[0], stats[1], m, momentum


def batchnorm_inference(x, gamma, beta, mean, var, eps=1e-5):
    """Inference-mode BN (Alg. 2): one affine map per feature, population statistics.

    x: (N, D) with N >= 1; gamma, beta, mean, var: (D,); var >= 0 (the unbiased
    estimate). Output depends on each row alone:
    y = gamma * (x - mean) / sqrt(var + eps) + beta.
    The exercise is the folded map y = x * scale + shift. In float32 with |mean| much
    larger than the std it loses digits (x = 1e4 + 0.1 z: relative error ~1e-3), so
    there the same map runs as (x - mean) * scale + beta (_recentred_inference).
    """
    v.float_array("x", x, ndim=2)
    d = x.shape[1]
    gamma, beta, mean, var = (v.param_vector(name, a, d, x.dtype) for name, a in
                              (("gamma", gamma), ("beta", beta), ("mean", mean),
                               ("var", var)))
    if (var < 0).any():
        raise ValueError(f"var must be >= 0 (a variance), got min {var.min()!r}")
    eps = v.eps_for_dtype("eps", eps, x.dtype)
    if x.dtype == np.float32 and (np.abs(mean) > 8 * np.sqrt(var + eps)).any():
        return _recentred_inference(x, gamma, beta, mean, var, eps)  # accuracy
    # Exercise 4.2 (notebook 04): Alg. 2, line 11, as one affine map per feature.
    ### BEGIN SOLUTION
    scale = gamma / np.sqrt(var + eps)
    shift = beta - mean * scale
    return x * scale + shift
    ### END SOLUTION


# ------------------------------------------------------- convolutional (N, C, H, W)


def spatial_batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Training-mode BN for conv feature maps: (mu, sigma2, gamma, beta) per channel.

    x: (N, C, H, W); gamma, beta: (C,). Statistics over N, H, W (m = N*H*W).
    Returns out (N, C, H, W) and the BNCache of the (N*H*W, C) rows.
    """
    v.float_array("x", x, ndim=4, finite=False)
    v.batch_for_training("x", x, (0, 2, 3))
    # Exercise 5.1 (notebook 05): from batchnorm_forward, one row per location.
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    x_rows = x.transpose(0, 2, 3, 1).reshape(N * H * W, C)
    out_rows, cache = batchnorm_forward(x_rows, gamma, beta, eps)
    out = out_rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    return out, cache
    ### END SOLUTION


def spatial_batchnorm_backward(dout, cache):
    """Backward of spatial_batchnorm_forward: dx (N,C,H,W), dgamma (C,), dbeta (C,)."""
    _checked_spatial_backward_args(dout, cache)
    # Exercise 5.2 (notebook 05): from batchnorm_backward_alt, one row per location.
    ### BEGIN SOLUTION
    N, C, H, W = dout.shape
    dout_rows = dout.transpose(0, 2, 3, 1).reshape(N * H * W, C)
    dx_rows, dgamma, dbeta = batchnorm_backward_alt(dout_rows, cache)
    dx = dx_rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    return dx, dgamma, dbeta
    ### END SOLUTION


def _checked_spatial_backward_args(dout, cache):
    c = _checked_cache(cache)
    v.float_array("dout", dout)
    if dout.ndim != 4:
        raise ValueError(
            f"dout must be 4-D (N, C, H, W), got shape {dout.shape}; for (N, D) use "
            f"batchnorm_backward with the cache of batchnorm_forward"
        )
    n, ch, h, w = dout.shape
    if (n * h * w, ch) != c.x_hat.shape:
        raise ValueError(
            f"dout of shape {dout.shape} does not fit the cache ({c.x_hat.shape[0]} "
            f"locations x {c.x_hat.shape[1]} channels): pass the cache of "
            f"spatial_batchnorm_forward on the same x"
        )


def spatial_batchnorm_inference(x, gamma, beta, mean, var, eps=1e-5):
    """Inference-mode BN for (N, C, H, W) with per-channel population statistics."""
    v.float_array("x", x, ndim=4)
    return _from_rows(batchnorm_inference(_to_rows(x), gamma, beta, mean, var, eps),
                      x.shape)


def _to_rows(x: np.ndarray) -> np.ndarray:
    """(N, C, ...) -> (N*..., C): every value of a channel in one column."""
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def _from_rows(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of _to_rows for an input of `shape`."""
    moved = (shape[0], *shape[2:], shape[1])
    return np.moveaxis(rows.reshape(moved), -1, 1)


# ---------------------------------------------------- layers with running statistics


class _BatchNorm:
    """numpy twin of torch's _BatchNorm: same arguments, buffers and state_dict keys.

    gamma, beta: the learnable scale and shift (torch's weight and bias); with
    affine=False they stay 1 and 0 and are not parameters. running_mean, running_var:
    buffers, trained with a running 'momentum update' (not by gradient descent), updated
    in place; momentum=None averages all batches seen so far (a cumulative average).
    track_running_stats=False: no buffers, batch statistics in eval mode too.
    """

    _ndims: tuple[int, ...] = ()
    _layout = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=np.float64):
        self.num_features = v.positive_int("num_features", num_features)
        self.dtype = v.float_dtype("dtype", dtype)
        self.eps = v.eps_for_dtype("eps", eps, self.dtype)
        self.momentum = None if momentum is None else v.unit_interval("momentum",
                                                                        momentum)
        self.affine = v.boolean("affine", affine)
        self.track_running_stats = v.boolean("track_running_stats",
                                             track_running_stats)
        self.gamma = np.ones(num_features, dtype=self.dtype)
        self.beta = np.zeros(num_features, dtype=self.dtype)
        if self.track_running_stats:
            self.running_mean = np.zeros(num_features, dtype=self.dtype)
            self.running_var = np.ones(num_features, dtype=self.dtype)
            self.num_batches_tracked = np.zeros((), dtype=np.int64)
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None
        self.training = True
        self.dgamma = self.dbeta = None
        self.cache = None  # the BNCache of the last training-mode forward
        self._last = None  # (used batch statistics?, input shape, input rows)

    # ---------------------------------------------------------- torch's module API
    def train(self, mode: bool = True):
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean: mode must be "
                             f"True or False, got {type(mode).__name__} {mode!r}")
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    @property
    def weight(self):
        """torch's name for gamma (None with affine=False)."""
        return self.gamma if self.affine else None

    @property
    def bias(self):
        """torch's name for beta (None with affine=False)."""
        return self.beta if self.affine else None

    def parameters(self) -> list[np.ndarray]:
        """[gamma, beta] (the arrays themselves), or [] with affine=False."""
        return [self.gamma, self.beta] if self.affine else []

    def reset_running_stats(self) -> None:
        """running_mean = 0, running_var = 1, num_batches_tracked = 0, in place."""
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def reset_parameters(self) -> None:
        """reset_running_stats(), and gamma = 1, beta = 0 (in place)."""
        self.reset_running_stats()
        self.gamma[...] = 1
        self.beta[...] = 0

    def _state_names(self) -> list[str]:
        names = ["weight", "bias"] if self.affine else []
        if self.track_running_stats:
            names += ["running_mean", "running_var", "num_batches_tracked"]
        return names

    def _state_array(self, name):
        return getattr(self, {"weight": "gamma", "bias": "beta"}.get(name, name))

    def state_dict(self) -> OrderedDict:
        """torch's keys (weight, bias, running_mean, running_var, num_batches_tracked)
        mapped to the layer's arrays themselves (not copies), as torch does.

        To load into torch: ``{k: torch.as_tensor(a) for k, a in sd.items()}``.
        """
        return OrderedDict((k, self._state_array(k)) for k in self._state_names())

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copy values (numpy arrays or torch tensors) into the layer, in place.

        Returns (missing_keys, unexpected_keys); with strict=True either raises.
        """
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"state_dict must be a mapping such as layer.state_dict(),"
                            f" got {type(state_dict).__name__}")
        names = self._state_names()
        missing = [k for k in names if k not in state_dict]
        unexpected = [k for k in state_dict if k not in names]
        if strict and (missing or unexpected):
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}: missing "
                f"key(s) {missing}, unexpected key(s) {unexpected}")
        for k in names:
            if k not in state_dict:
                continue
            a = state_dict[k]
            if hasattr(a, "detach"):  # a torch tensor
                a = a.detach().cpu().numpy()
            a = np.asarray(a)
            dst = self._state_array(k)
            if a.shape != dst.shape:
                raise ValueError(f"size mismatch for {k}: copying a value of shape "
                                 f"{a.shape}, the layer's is {dst.shape}")
            np.copyto(dst, a, casting="unsafe")
        return missing, unexpected

    # ----------------------------------------------------------- checks and layout
    def _check_state(self):
        """Parameters and buffers, in case a caller replaced one (named if wrong)."""
        arrays = [("gamma", self.gamma), ("beta", self.beta)]
        if self.track_running_stats:
            arrays += [("running_mean", self.running_mean),
                       ("running_var", self.running_var)]
        for name, a in arrays:
            if (not isinstance(a, np.ndarray) or a.shape != (self.num_features,)
                    or a.dtype != self.dtype):
                raise ValueError(
                    f"{name} must be an array of shape ({self.num_features},) and "
                    f"dtype {self.dtype}, one value per feature, got {v.describe(a)}; "
                    f"set it in place (layer.{name}[...] = values) or with "
                    f"load_state_dict")

    def _rows(self, x) -> np.ndarray:
        """Check x and return it as (m, C) rows: one column per feature/channel."""
        v.float_array("x", x, finite=False)
        if x.ndim not in self._ndims:
            raise ValueError(f"x must be {self._layout}, got shape {x.shape}")
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
        self._check_state()
        return _to_rows(x)

    def _momentum_of_this_step(self):
        """In training: count the batch, and return momentum (or 1/batches seen, the
        cumulative average, when momentum is None). In eval: None."""
        if not self.training:
            return None
        self.num_batches_tracked += 1
        if self.momentum is None:
            return 1.0 / float(self.num_batches_tracked)
        return self.momentum

    def _forward_batch_statistics(self, rows, shape):
        """track_running_stats=False: batch statistics in both modes, no buffers."""
        self._last = (True, shape, rows)
        out, self.cache = batchnorm_forward(rows, self.gamma, self.beta, self.eps)
        return _from_rows(out, shape)

    # ------------------------------------------------------------- forward, backward
    def forward(self, x):
        """Train mode: batch statistics (Alg. 1), and update the running estimates.

        Eval mode: the running estimates (population statistics, Alg. 2).
        x: (N, C), (N, C, L) or (N, C, H, W). Given to your code: rows, x as (m, C)
        (one column per feature or channel), and momentum, the weight of this batch
        in the running averages. Keep the forward cache in self.cache (backward uses
        it), update self.running_mean and self.running_var in place (arr[...] = new),
        and return _from_rows(out_rows, x.shape).
        """
        rows = self._rows(x)  # checks, and every value of a channel in one column
        if not self.track_running_stats:
            return self._forward_batch_statistics(rows, x.shape)
        self._last = (self.training, x.shape, rows)
        momentum = self._momentum_of_this_step()
        # Exercise 4.3 (notebook 04): the train/eval switch, from 2.1, 4.1 and 4.2.
        ### BEGIN SOLUTION
        if self.training:  # Alg. 1 with the batch's statistics, then the running update
            out, self.cache = batchnorm_forward(rows, self.gamma, self.beta, self.eps)
            new_mean, new_var = update_running_stats(
                self.running_mean, self.running_var, self.cache.mu, self.cache.var,
                self.cache.m, momentum)
            self.running_mean[...] = new_mean  # in place, as torch updates its buffers
            self.running_var[...] = new_var
        else:  # Alg. 2: population statistics, the same affine map for every example
            out = batchnorm_inference(rows, self.gamma, self.beta, self.running_mean,
                                      self.running_var, self.eps)
        return _from_rows(out, x.shape)
        ### END SOLUTION

    def __call__(self, x):
        return self.forward(x)

    def backward(self, dout):
        """Returns dx; stores dgamma and dbeta on the layer (None if not affine)."""
        if self._last is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        batch_stats, shape, rows = self._last
        v.float_array("dout", dout)
        if dout.shape != shape:
            raise ValueError(f"dout must have the shape of the last input {shape}, "
                             f"got {dout.shape}")
        dout_rows = _to_rows(dout.astype(self.dtype, copy=False))
        if batch_stats:
            dx_rows, dgamma, dbeta = batchnorm_backward_alt(dout_rows, self.cache)
        else:  # eval mode: the layer is a fixed affine map y = scale * x + shift
            inv_std = 1.0 / np.sqrt(self.running_var + self.eps)
            x_hat = (rows - self.running_mean) * inv_std
            dgamma = (dout_rows * x_hat).sum(axis=0)
            dbeta = dout_rows.sum(axis=0)
            dx_rows = dout_rows * (self.gamma * inv_std)
        self.dgamma, self.dbeta = (dgamma, dbeta) if self.affine else (None, None)
        return _from_rows(dx_rows, shape)

    def __repr__(self):
        return (
            f"{type(self).__name__}({self.num_features}, eps={self.eps}, "
            f"momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}, dtype={self.dtype}, "
            f"training={self.training})"
        )


class BatchNorm1d(_BatchNorm):
    """numpy twin of torch.nn.BatchNorm1d for (N, C) or (N, C, L) inputs."""

    _ndims = (2, 3)
    _layout = "2-D (N, C) or 3-D (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """numpy twin of torch.nn.BatchNorm2d for (N, C, H, W): per-channel statistics."""

    _ndims = (4,)
    _layout = "4-D (N, C, H, W)"
