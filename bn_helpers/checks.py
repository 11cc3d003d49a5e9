"""Readable pass/fail checks for the exercises (after Karpathy's ``cmp``).

A check prints one line when it passes::

    OK   dx vs finite differences           max error 4.4e-16 (tolerance 2.7e-10)

and raises ``AssertionError`` when it does not, saying what was expected, what was got,
where the largest difference is (with its neighbours along the last axis), and a hint
when the mistake is recognisable::

    FAIL sigma_B^2 vs unbiased              error 0.377 at [4] (tolerance 1.5e-05)
         expected 1.51, got 1.89 at [4]; 5 of 5 values differ
         expected [0:5] 0.0541  0.254  0.494  0.666   1.51
         got      [0:5] 0.0677  0.317  0.618  0.832   1.89
         hint: got = expected x 1.25, a constant factor: m / (m - 1)? 1 / m? gamma?

The error is absolute (|got - expected|) and the tolerance is numpy.allclose's
``atol + rtol * |expected|`` at the same element, so values near zero are judged by
``atol`` and never by a relative error that blows up there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from bn_helpers.gradcheck import rel_error

__all__ = ["check_close", "check_true", "format_number"]

NAME_WIDTH = 34
_INDENT = " " * 5


class RelError(float):
    """rel_error(got, expected), returned by check_close for callers that assert on
    it. A cell that ends with a check shows only the check line, not this number."""

    def _ipython_display_(self) -> None:  # IPython: display nothing as Out[n]
        return None


def _as_numpy(a):
    if hasattr(a, "detach"):  # a torch tensor
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def format_number(x: float) -> str:
    """Short and readable: 3e-16, 2.5e-05, 0.04, 1.01, 1.2e+03, 0, nan."""
    x = float(x)
    if x == 0 or not np.isfinite(x):
        return "0" if x == 0 else str(x)
    if 1e-3 <= abs(x) < 1e4:
        return f"{x:.3g}"
    return re.sub(r"\.?0+e", "e", f"{x:.1e}")


def _index(flat: int, shape: tuple) -> str:
    return "[" + ", ".join(str(i) for i in np.unravel_index(flat, shape)) + "]"


def _windows(expected: np.ndarray, got: np.ndarray, worst: int) -> list[str]:
    """Two aligned lines: up to 6 values of expected and got along the last axis,
    around the worst element, e.g. 'expected [2, 0:4]   0.5  1.2 ...'."""
    if expected.ndim == 0:
        return [f"expected {format_number(expected)}", f"got      {format_number(got)}"]
    idx = np.unravel_index(worst, expected.shape)
    n = expected.shape[-1]
    lo = max(0, min(idx[-1] - 2, n - 6))
    hi = min(n, lo + 6)
    where = "[" + ", ".join([str(i) for i in idx[:-1]] + [f"{lo}:{hi}"]) + "]"
    rows = [[format_number(v) for v in a[idx[:-1]][lo:hi]] for a in (expected, got)]
    width = max(len(t) for row in rows for t in row)
    dots = ("... " if lo > 0 else "", " ..." if hi < n else "")
    labels = ("expected", "got     ")
    return [f"{label} {where} {dots[0]}" + " ".join(t.rjust(width) for t in row)
            + dots[1] for label, row in zip(labels, rows, strict=True)]


def _checked_hints(hints) -> list[tuple[np.ndarray, str]]:
    if hints is None:
        return []
    if isinstance(hints, (str, bytes)) or not isinstance(hints, Sequence):
        raise TypeError("hints must be a sequence of (wrong_answer, message) pairs, "
                        f"got {type(hints).__name__}")
    pairs = []
    for k, pair in enumerate(hints):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2
                and isinstance(pair[1], str)):
            raise TypeError(f"hints[{k}] must be a pair (wrong_answer_array, "
                            f"message: str), got {pair!r:.60}")
        pairs.append((_as_numpy(pair[0]), pair[1]))
    return pairs


def _known_mistake(got, expected, hints, rtol, atol) -> str | None:
    """The first hint whose wrong answer `got` matches, else a generic recognised
    mistake (NaN, sign, constant factor, transposed), else None."""
    loose = dict(rtol=max(rtol, 1e-6), atol=max(atol, 1e-9))
    for wrong, message in hints:
        if wrong.shape == got.shape and np.allclose(got, wrong, **loose):
            return message
    if not np.all(np.isfinite(got)):
        bad = int(np.size(got) - np.count_nonzero(np.isfinite(got)))
        return (f"got holds {bad} NaN or inf value(s): a division by zero "
                "(eps left out?) or an overflow")
    if got.shape != expected.shape:
        if got.ndim == 2 and got.T.shape == expected.shape \
                and np.allclose(got.T, expected, **loose):
            return "got is expected transposed: check which axis you reduce over"
        if got.size == expected.size:
            return "the right number of values in the wrong shape: keepdims? axis?"
        return None
    if np.any(expected != 0) and np.allclose(got, -expected, **loose):
        return "got = -expected: a sign is flipped"
    nz = np.abs(expected) > atol
    if nz.any() and np.all(np.isfinite(expected)):
        ratio = np.median(got[nz] / expected[nz])
        if np.isfinite(ratio) and abs(ratio - 1) > 1e-3 \
                and np.allclose(got, ratio * expected, **loose):
            return (f"got = expected x {format_number(ratio)}, a constant factor: "
                    "m / (m - 1)? 1 / m? gamma?")
    return None


def _fail(name: str, headline: str, lines: list[str], hint: str | None):
    body = [f"FAIL {name:<{NAME_WIDTH}} {headline}"]
    body += [_INDENT + line for line in lines]
    if hint:
        body.append(f"{_INDENT}hint: {hint}")
    raise AssertionError("\n".join(body))


def check_close(
    name: str,
    got,
    expected,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    quiet: bool = False,
    hints=None,
) -> float:
    """Assert got ~= expected (as numpy.allclose); print one OK line or raise.

    hints: optional [(wrong_answer_array, message), ...]: when the check fails and
    `got` is close to a wrong answer, its message is shown as the hint.
    Returns rel_error(got, expected) (a float that a notebook cell does not echo).
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    hints = _checked_hints(hints)
    got, expected = _as_numpy(got), _as_numpy(expected)
    if got.shape != expected.shape:
        _fail(name, "wrong shape",
              [f"expected shape {expected.shape}, got shape {got.shape}"],
              _known_mistake(got, expected, hints, rtol, atol))
    g = got.astype(np.float64)
    e = expected.astype(np.float64)
    diff = np.abs(g - e)
    tol = atol + rtol * np.abs(e)
    # NaN anywhere is a failure (allclose says so too); treat it as an infinite error
    excess = np.where(np.isnan(diff), np.inf, diff - tol)
    if got.size and np.max(excess) > 0:
        worst = int(np.argmax(excess))
        where = _index(worst, got.shape)
        n_bad = int(np.count_nonzero(excess > 0))
        lines = [f"expected {format_number(e.flat[worst])}, got "
                 f"{format_number(g.flat[worst])} at {where}; "
                 f"{n_bad} of {got.size} values differ"] + _windows(e, g, worst)
        headline = (f"error {format_number(diff.flat[worst])} at {where} "
                    f"(tolerance {format_number(tol.flat[worst])})")
        _fail(name, headline, lines, _known_mistake(got, expected, hints, rtol, atol))
    if not quiet:
        top = int(np.argmax(diff)) if got.size else 0
        err = float(diff.flat[top]) if got.size else 0.0
        bound = float(tol.flat[top]) if got.size else atol
        print(f"OK   {name:<{NAME_WIDTH}} max error {format_number(err)} "
              f"(tolerance {format_number(bound)})")
    return RelError(rel_error(got, expected))


def check_true(name: str, condition: bool, detail: str = "") -> None:
    """Assert a claim made in the text, with a one-line report either way.

    condition must be a bool (Python or numpy): ``check_true("...", np.allclose)``
    without the call, or a tuple, would otherwise always pass.
    """
    if not isinstance(condition, (bool, np.bool_)):
        raise TypeError(
            f"condition must be a bool (True/False), got {type(condition).__name__}: "
            f"did you forget to call a function, or to reduce an array with .all()?"
        )
    line = f"{name:<{NAME_WIDTH}} {detail}".rstrip()
    if not condition:
        raise AssertionError(f"FAIL {line}")
    print(f"OK   {line}")
