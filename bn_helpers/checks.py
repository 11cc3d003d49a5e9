"""Readable pass/fail checks for the exercises (after Karpathy's ``cmp``).

``check_close`` prints one line (name, exact?, close?, max abs diff, relative error)
and raises ``AssertionError`` with the same line when the arrays are not close, so a
wrong answer stops run-all instead of scrolling past.
"""

from __future__ import annotations

import numpy as np

from bn_helpers.gradcheck import rel_error

__all__ = ["check_close", "check_true"]


def _as_numpy(a):
    if hasattr(a, "detach"):  # a torch tensor
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def check_close(
    name: str,
    got,
    expected,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    quiet: bool = False,
) -> float:
    """Assert got ~= expected (as numpy.allclose); print a report; return rel error."""
    got, expected = _as_numpy(got), _as_numpy(expected)
    if got.shape != expected.shape:
        raise AssertionError(
            f"{name}: shape {got.shape} != expected shape {expected.shape}"
        )
    exact = bool(np.array_equal(got, expected))
    close = bool(np.allclose(got, expected, rtol=rtol, atol=atol))
    maxdiff = (
        float(np.max(np.abs(got.astype(np.float64) - expected))) if got.size else 0.0
    )
    rel = rel_error(got, expected)
    line = (
        f"{name:<36} | exact: {str(exact):5} | close: {str(close):5} | "
        f"max abs diff: {maxdiff:.2e} | rel error: {rel:.2e}"
    )
    if not close:
        raise AssertionError(line + f"  (rtol={rtol}, atol={atol})")
    if not quiet:
        print(line)
    return rel


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
    line = f"{name:<36} | {'OK' if condition else 'FAILED'}" + (
        f" | {detail}" if detail else ""
    )
    if not condition:
        raise AssertionError(line)
    print(line)
