"""Gradient checking: compare an analytic gradient with centred finite differences.

Finite differences are only trustworthy in float64: with h = 1e-5 the rounding error of
float32 (about 1e-7 relative) divided by 2h swamps the answer, so float32 is refused.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bn_helpers import _validate as v

__all__ = ["rel_error", "numeric_gradient", "numeric_partial"]


def rel_error(a, b) -> float:
    """max_i |a_i - b_i| / max(1e-8, |a_i| + |b_i|): 0 if equal, ~1 if unrelated."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(
            f"rel_error needs arrays of one shape, got a {a.shape} and b {b.shape}"
        )
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def _float64_input(name, x):
    v.float_array(name, x)
    if x.dtype != np.float64:
        raise TypeError(
            f"{name} must be float64 for finite differences, got {x.dtype}: in "
            f"float32 the rounding error / (2h) swamps the derivative; use "
            f"{name}.astype(np.float64)"
        )
    return x


def _evaluate(f, x, index, value, snapshot):
    """f(x) with x[index] = value, as float64; x is left as it was, even if f raises.

    `snapshot` is a copy of x: if f changed x in place, the differences would be wrong.
    """
    old = x[index]
    x[index] = snapshot[index] = value
    try:
        out = np.asarray(f(x))
        if not np.array_equal(x, snapshot):
            raise ValueError(
                "f modified its argument x in place, so finite differences would be "
                "wrong; make f work on a copy (e.g. x = x - x.mean(), not x -= ...)"
            )
        if out.dtype != np.float64:
            raise TypeError(
                f"f must return float64 values, got dtype {out.dtype}: rounding to "
                f"{out.dtype} / (2h) swamps the derivative"
            )
        return np.array(out, copy=True)
    finally:
        snapshot[index] = old
        x[...] = snapshot


def numeric_gradient(
    f: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    dout: np.ndarray,
    h: float = 1e-5,
) -> np.ndarray:
    """Centred-difference gradient of sum(f(x) * dout) with respect to x.

    f maps x to a float64 array and must not modify x; dout has f(x)'s shape (the
    upstream gradient dl/df). Entry i is
    sum((f(x + h e_i) - f(x - h e_i)) * dout) / (2h); x is perturbed and restored.
    """
    _float64_input("x", x)
    if x.size == 0:
        raise ValueError(f"x must hold at least one value to perturb, got shape "
                         f"{x.shape}")
    h = v.positive_float("h", h)
    snapshot = x.copy()
    fx = _evaluate(f, x, (0,) * x.ndim, x[(0,) * x.ndim], snapshot)
    v.float_array("dout", dout)
    if dout.shape != fx.shape:
        raise ValueError(
            f"dout must have the shape of f(x) {fx.shape}, got {dout.shape}"
        )
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        plus = _evaluate(f, x, i, x[i] + h, snapshot)
        minus = _evaluate(f, x, i, x[i] - h, snapshot)
        grad[i] = np.sum((plus - minus) * dout) / (2 * h)
    return grad


def numeric_partial(
    f: Callable[[np.ndarray], float], x: np.ndarray, index, h: float = 1e-5
) -> float:
    """df/dx[index] of a scalar float64 function f, by centred differences."""
    _float64_input("x", x)
    h = v.positive_float("h", h)
    index = tuple(np.atleast_1d(index))
    if len(index) != x.ndim or any(
        not 0 <= i < n for i, n in zip(index, x.shape, strict=False)
    ):
        raise IndexError(
            f"index must address one entry of x with shape {x.shape}, got {index}"
        )
    snapshot = x.copy()
    plus = _evaluate(f, x, index, x[index] + h, snapshot)
    minus = _evaluate(f, x, index, x[index] - h, snapshot)
    if plus.size != 1:
        raise ValueError(f"f must return a scalar, got shape {plus.shape}")
    return float(plus - minus) / (2 * h)
