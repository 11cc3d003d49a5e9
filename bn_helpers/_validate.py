"""Argument checks shared by the public functions.

Every message names the argument, what was expected and what was given, so a learner
who passes the wrong thing reads what to change, not a silent wrong number.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def describe(a) -> str:
    """A short description of a value for an error message."""
    if isinstance(a, np.ndarray):
        return f"array of shape {a.shape} and dtype {a.dtype}"
    return f"{type(a).__name__} {a!r}"[:120]


def float_array(
    name: str,
    a,
    *,
    ndim: int | None = None,
    min_ndim: int | None = None,
    finite: bool = True,
):
    """Return `a` if it is a float32/float64 ndarray of the right rank, else raise.

    finite=False skips the scan for NaN/inf; the caller must then use `finite_summary`.
    """
    if not isinstance(a, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy.ndarray of float32 or float64, got "
            f"{describe(a)}; convert with np.asarray({name}, dtype=np.float64)"
        )
    if isinstance(a, (np.matrix, np.ma.MaskedArray)):
        raise TypeError(
            f"{name} must be a plain numpy.ndarray, got {type(a).__name__} (its "
            f"operators or mask would change the result); use np.asarray({name})"
        )
    if a.dtype.type not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must have dtype float32 or float64, got dtype {a.dtype}; "
            f"integer or other inputs would be normalised with the wrong arithmetic, "
            f"convert with {name}.astype(np.float64)"
        )
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape} ({a.ndim}-D)")
    if min_ndim is not None and a.ndim < min_ndim:
        raise ValueError(f"{name} must be at least {min_ndim}-D, got shape {a.shape}")
    if finite and a.size and not np.isfinite(a).all():
        bad = int(a.size - np.isfinite(a).sum())
        raise ValueError(
            f"{name} must be finite, got {bad} NaN/inf value(s) in shape {a.shape}"
        )
    return a


def param_vector(name: str, a, size: int, dtype) -> np.ndarray:
    """Per-feature parameter (gamma, beta, mean, var), shape (size,), cast to dtype."""
    float_array(name, a)
    if a.shape != (size,):
        raise ValueError(
            f"{name} must have shape ({size},), one value per feature/channel, "
            f"got shape {a.shape}"
        )
    return a.astype(dtype, copy=False)


def positive_float(name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, Real):
        raise TypeError(f"{name} must be a positive real number, got {describe(v)}")
    v = float(v)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
    return v


def eps_for_dtype(name: str, eps, dtype) -> float:
    """A positive eps that does not round to 0 in `dtype` (var + eps must stay > 0)."""
    eps = positive_float(name, eps)
    if np.dtype(dtype).type(eps) == 0:
        raise ValueError(
            f"{name}={eps!r} rounds to 0 in {np.dtype(dtype)}, so a constant feature "
            f"would give 0/0 = NaN; use {name} >= "
            f"{float(np.finfo(dtype).smallest_subnormal):.3g} (e.g. 1e-5) or float64"
        )
    return eps


def float_dtype(name: str, dtype) -> np.dtype:
    """np.float32 or np.float64 (or their names), as a numpy dtype."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.type not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must be a numpy float dtype: np.float32, np.float64, 'float32' "
            f"or 'float64', got {describe(dtype)}"
            + ("; for torch.float32 use np.float32" if "torch" in repr(dtype) else "")
        )
    return dt


def boolean(name: str, b) -> bool:
    if not isinstance(b, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {describe(b)}")
    return bool(b)


def non_negative_float(name: str, a) -> float:
    if isinstance(a, bool) or not isinstance(a, Real):
        raise TypeError(f"{name} must be a real number >= 0, got {describe(a)}")
    a = float(a)
    if not (math.isfinite(a) and a >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {a!r}")
    return a


def unit_interval(name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, Real):
        raise TypeError(f"{name} must be a real number in [0, 1], got {describe(v)}")
    v = float(v)
    if not (0.0 <= v <= 1.0):
        raise ValueError(f"{name} must be in [0, 1], got {v!r}")
    return v


def positive_int(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be a positive int, got {describe(v)}")
    if v < 1:
        raise ValueError(f"{name} must be >= 1, got {v}")
    return int(v)


def seed(name: str, s) -> int:
    """A seed for np.random.default_rng / torch.manual_seed: an int in [0, 2**63)."""
    if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {describe(s)}")
    if not 0 <= s < 2**63:
        raise ValueError(f"{name} must be in [0, 2**63), got {s}")
    return int(s)


def batch_for_training(name: str, x: np.ndarray, axes: tuple[int, ...]) -> int:
    """Number of values each statistic averages; BN needs at least 2 in training."""
    m = int(np.prod([x.shape[a] for a in axes]))
    if m == 0:
        raise ValueError(f"{name} holds no values to normalise: shape {x.shape}")
    if m < 2:
        raise ValueError(
            f"Expected more than 1 value per feature/channel when training, got "
            f"{name} of shape {x.shape} ({m} value per statistic): the batch variance "
            f"of one value is 0 and x_hat would be 0; use a batch of size >= 2, or "
            f"eval mode / "
            f"batchnorm_inference for single examples"
        )
    return m


def grad_like(
    dout, expected_shape: tuple[int, ...], dtype, finite: bool = True
) -> np.ndarray:
    float_array("dout", dout, finite=finite)
    if dout.shape != tuple(expected_shape):
        raise ValueError(
            f"dout must have the shape of the forward output {tuple(expected_shape)}, "
            f"got shape {dout.shape}; was the cache made from a different x?"
        )
    return dout.astype(dtype, copy=False)


def finite_summary(name: str, a: np.ndarray, summary: np.ndarray) -> None:
    """Raise if `summary` (sums computed from `a` anyway) is not finite.

    A NaN or inf anywhere in `a` makes the sums non-finite, so this costs nothing on
    good input; only on bad input do we scan `a` to say what is wrong.
    """
    if np.isfinite(summary).all():
        return
    float_array(name, a)  # raises with a count of NaN/inf if there are any
    raise ValueError(
        f"{name} is too large for {a.dtype}: its sums overflow (max |{name}| = "
        f"{float(np.abs(a).max()):.3g}); rescale the input or use float64"
    )
