"""Check lines a learner reads: the OK line, and the failure form (expected, got,
where, hint), judged on arrays whose differences we place ourselves."""

from __future__ import annotations

import re

import numpy as np
import pytest

from bn_helpers.checks import check_close, check_true, format_number

OK_RE = re.compile(r"^OK   (.+?)\s{2,}max error (\S+) \(tolerance (\S+)\)$")


def failure(*args, **kwargs) -> str:
    with pytest.raises(AssertionError) as info:
        check_close(*args, **kwargs)
    return str(info.value)


def test_a_cell_ending_with_a_check_shows_only_the_line():
    from IPython.core.formatters import DisplayFormatter

    rel = check_close("a", np.ones(2), np.ones(2) + 1e-12, quiet=True)
    assert isinstance(rel, float) and 0 < rel < 1e-11
    assert DisplayFormatter().format(rel) == ({}, {})  # no Out[n]: 1e-12 ...


def test_ok_line_has_name_error_and_tolerance(capsys):
    a = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
    check_close("dx vs finite differences", a, a + 3e-16, rtol=1e-10, atol=1e-12)
    line = capsys.readouterr().out.strip()
    m = OK_RE.match(line)
    assert m, f"not the OK form: {line!r}"
    assert m.group(1) == "dx vs finite differences"
    err, tol = float(m.group(2)), float(m.group(3))
    assert 1e-16 <= err <= 1e-15 and tol <= 1.1e-10 + 1e-12
    assert "exact" not in line and "rel error" not in line and len(line) <= 88


def test_quiet_prints_nothing_and_returns_rel_error(capsys):
    a = np.arange(4.0)
    assert check_close("same", a, a.copy(), quiet=True) == 0.0
    assert capsys.readouterr().out == ""


def test_failure_names_expected_got_where_and_counts():
    expected = np.zeros((3, 4))
    got = expected.copy()
    got[2, 1] = 0.5  # the one wrong value, and the largest difference
    got[0, 0] = 1e-9  # within atol: not counted as wrong
    text = failure("x_hat", got, expected)
    first, *rest = text.splitlines()
    rest = [line.strip() for line in rest]
    assert first.startswith("FAIL x_hat") and "error 0.5 at [2, 1]" in first
    assert "(tolerance 1e-08)" in first
    assert "expected 0, got 0.5 at [2, 1]; 1 of 12 values differ" in text
    # the row of the largest difference, expected above got, columns aligned
    assert "expected [2, 0:4]   0   0   0   0" in rest
    assert "got      [2, 0:4]   0 0.5   0   0" in rest
    assert "hint" not in text  # nothing recognisable: no invented hint


def test_near_zero_values_are_judged_by_atol_not_relative_error(capsys):
    # relative error of 1e-12 vs 3e-12 is 0.5, yet both are "zero" at atol=1e-8
    check_close("sum of dx", np.array([1e-12]), np.array([3e-12]))
    assert capsys.readouterr().out.startswith("OK   sum of dx")
    text = failure("sum of dx", np.array([2e-8]), np.array([0.0]))
    assert "error 2e-08 at [0] (tolerance 1e-08)" in text


def test_hint_of_a_matching_wrong_answer_wins():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 3))
    biased, unbiased = x.var(axis=0), x.var(axis=0, ddof=1)
    hints = [(x.std(axis=0), "that is the standard deviation, not the variance"),
             (unbiased, "you divided by m - 1: Alg. 1 divides by m")]
    text = failure("sigma_B^2", unbiased, biased, hints=hints)
    assert text.splitlines()[-1].strip() == (
        "hint: you divided by m - 1: Alg. 1 divides by m")
    # a wrong answer that matches no hint gets no hint of those
    assert "divided by m - 1" not in failure("sigma_B^2", biased + 1.0, biased,
                                              hints=hints)


@pytest.mark.parametrize("make_got, words", [
    (lambda e: -e, "sign is flipped"),
    (lambda e: 1.2 * e, "got = expected x 1.2, a constant factor"),
    (lambda e: e * np.nan, "NaN or inf"),
    (lambda e: e.T, "wrong shape"),
])
def test_recognised_mistakes_without_hints(make_got, words):
    expected = np.arange(1.0, 7.0).reshape(2, 3)
    text = failure("out", make_got(expected), expected)
    assert words in text, text


def test_shape_mismatch_names_both_shapes():
    text = failure("dgamma", np.zeros((1, 3)), np.zeros(3))
    assert "expected shape (3,), got shape (1, 3)" in text
    assert "keepdims" in text


def test_bad_hints_are_refused_with_the_argument_named():
    with pytest.raises(TypeError, match="hints"):
        check_close("a", np.ones(2), np.ones(2), hints="divide by m")
    with pytest.raises(TypeError, match=r"hints\[0\]"):
        check_close("a", np.ones(2), np.ones(2), hints=[(np.ones(2),)])


def test_torch_tensors_are_accepted(capsys):
    torch = pytest.importorskip("torch")
    check_close("torch", torch.ones(3, dtype=torch.float64), np.ones(3))
    assert capsys.readouterr().out.startswith("OK   torch")


def test_check_true_lines(capsys):
    check_true("closed form is faster", True, "2.1 x")
    assert capsys.readouterr().out.split() == ["OK", "closed", "form", "is",
                                               "faster", "2.1", "x"]
    with pytest.raises(AssertionError, match=r"^FAIL claim\s+detail$"):
        check_true("claim", False, "detail")


@pytest.mark.parametrize("x, text", [(3.05e-16, "3e-16"), (2.5e-5, "2.5e-05"),
                                     (0.0412, "0.0412"), (0.0, "0"),
                                     (1234.5, "1.23e+03"), (12345.0, "1.2e+04")])
def test_format_number(x, text):
    assert format_number(x) == text
