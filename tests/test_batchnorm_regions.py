"""The solution regions of bn_helpers/batchnorm.py follow CONTRACTS.md's format, and the
module with every region replaced by its stub still imports and still checks arguments.

The stripping here is a few lines written for this test (not the release tool), so it
checks the file against the contract, not against the tool's reading of it.
"""

import ast
import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from bn_helpers import batchnorm as bn

SOURCE = Path(bn.__file__).read_text()
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
EXERCISES = {  # number -> (function, notebook), as in CONTRACTS.md
    "2.1": ("batchnorm_forward", "02"),
    "3.7": ("batchnorm_backward", "03"),
    "3.8": ("batchnorm_backward_alt", "03"),
    "4.1": ("update_running_stats", "04"),
    "4.2": ("batchnorm_inference", "04"),
    "4.3": ("_BatchNorm.forward", "04"),
    "5.1": ("spatial_batchnorm_forward", "05"),
    "5.2": ("spatial_batchnorm_backward", "05"),
}
EXERCISE_LINE = re.compile(r"^\s*# Exercise (\d\.\d) \(notebook (\d\d)\)")


def _regions():
    """(number, notebook, function, begin line index, end line index)."""
    lines = SOURCE.splitlines()
    tree = ast.parse(SOURCE)
    funcs = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            funcs += [(f"{node.name}.{f.name}", f) for f in node.body
                      if isinstance(f, ast.FunctionDef)]
        elif isinstance(node, ast.Module):
            funcs += [(f.name, f) for f in node.body if isinstance(f, ast.FunctionDef)]
    out = []
    for i, line in enumerate(lines):
        if line.strip() == BEGIN:
            end = next(j for j in range(i, len(lines)) if lines[j].strip() == END)
            found = EXERCISE_LINE.match(lines[i - 1])
            number, notebook = found.groups() if found else (None, None)
            name = next(n for n, f in funcs if f.lineno <= i + 1 <= f.end_lineno)
            out.append((number, notebook, name, i, end))
    return out


def test_one_region_per_exercise_with_its_comment_line_above():
    regions = _regions()
    assert {r[0]: (r[2], r[1]) for r in regions} == EXERCISES
    assert len(regions) == len(EXERCISES)


def test_each_region_is_the_last_thing_in_its_function():
    lines = SOURCE.splitlines()
    for number, _, name, _, end in _regions():
        indent = len(lines[end]) - len(lines[end].lstrip())
        rest = [ln for ln in lines[end + 1:] if ln.strip()]
        nxt = rest[0] if rest else ""
        assert len(nxt) - len(nxt.lstrip()) < indent, (
            f"Exercise {number} ({name}): code after {END!r} in the same function")


def test_regions_hold_no_validation_and_no_tricks():
    lines = SOURCE.splitlines()
    for number, _, _, begin, end in _regions():
        body = "\n".join(lines[begin + 1:end])
        for banned in ("raise ", "einsum", "np.ones(", "_validate", "v.", "errstate",
                       "-=", "+=", "*="):
            assert banned not in body, f"Exercise {number}: {banned!r} in the region"
        code = [ln for ln in lines[begin + 1:end] if not ln.strip().startswith("#")]
        assert len(code) <= 16, f"Exercise {number}: {len(code)} lines of code"


def _student_module(tmp_path, monkeypatch):
    """bn_helpers.batchnorm with each region replaced by its NotImplementedError."""
    lines, out, skip = SOURCE.splitlines(), [], False
    regions = {begin: (number, name, nb) for number, nb, name, begin, _ in _regions()}
    for i, line in enumerate(lines):
        if i in regions:
            number, name, nb = regions[i]
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f'{indent}raise NotImplementedError("Exercise {number}: '
                       f'{name}: implement it in bn_helpers/batchnorm.py (notebook '
                       f'{nb})")')
            skip = True
        elif line.strip() == END:
            skip = False
        elif not skip:
            out.append(line)
    path = tmp_path / "student_batchnorm.py"
    path.write_text("\n".join(out) + "\n")
    assert BEGIN not in path.read_text() and "x.mean(axis=0)" not in path.read_text()
    spec = importlib.util.spec_from_file_location("student_batchnorm", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "student_batchnorm", module)  # for @dataclass
    spec.loader.exec_module(module)
    return module


def test_student_module_stubs_raise_and_checks_still_work(tmp_path, monkeypatch):
    s = _student_module(tmp_path, monkeypatch)
    x, g, b = np.random.default_rng(0).normal(size=(6, 3)), np.ones(3), np.zeros(3)
    x4 = x.reshape(6, 3, 1, 1)  # its rows are x: the cache of x fits
    cache = s.BNCache(**vars(bn.batchnorm_forward(x, g, b)[1]))
    calls = {
        "2.1": lambda: s.batchnorm_forward(x, g, b),
        "3.7": lambda: s.batchnorm_backward(x, cache),
        "3.8": lambda: s.batchnorm_backward_alt(x, cache),
        "4.1": lambda: s.update_running_stats(b, g, b, g, 6, 0.1),
        "4.2": lambda: s.batchnorm_inference(x, g, b, b, g),
        "4.3": lambda: s.BatchNorm1d(3).forward(x),
        "5.1": lambda: s.spatial_batchnorm_forward(x4, g, b),
        "5.2": lambda: s.spatial_batchnorm_backward(x4, cache),
    }
    for number, call in calls.items():
        name, nb = EXERCISES[number]
        message = (f"Exercise {number}: {name}: implement it in "
                   f"bn_helpers/batchnorm.py (notebook {nb})")
        with pytest.raises(NotImplementedError, match=re.escape(message)):
            call()
    # validation stays outside the regions: bad input is still named in the stub file
    with pytest.raises(ValueError, match="gamma"):
        s.batchnorm_forward(x, np.ones(4), b)
    with pytest.raises(ValueError, match="eps"):
        s.BatchNorm1d(3, eps=-1.0)
