"""Your exercises, checked: `make test` (or `python -m pytest tests`) runs the checks of
the notebooks' check cells, one test per exercise you write in bn_helpers/batchnorm.py.

A test fails with "not done yet" while its function still raises NotImplementedError,
and with the check's own message (expected, got, a hint) when the answer is wrong.
"""

from pathlib import Path

import pytest

import bn_helpers
from bn_helpers import verify

EDITION = Path(__file__).resolve().parent.parent

# (exercise, notebook, the check in bn_helpers/verify.py)
EXERCISES = [
    ("2.1", "02", "batchnorm_forward"),
    ("3.7", "03", "batchnorm_backward"),
    ("3.8", "03", "batchnorm_backward_alt"),
    ("4.1", "04", "update_running_stats"),
    ("4.2", "04", "batchnorm_inference"),
    ("4.3", "04", "layer_forward"),
    ("5.1", "05", "spatial_forward"),
    ("5.2", "05", "spatial_backward"),
]


def test_bn_helpers_is_this_editions():
    where = Path(bn_helpers.__file__).resolve()
    assert where.is_relative_to(EDITION), (
        f"bn_helpers is imported from {where.parent}, not from this edition "
        f"({EDITION}): run `pip install -e .` in this folder"
    )


@pytest.mark.parametrize(
    "number,notebook,check", EXERCISES, ids=[f"{n} {c}" for n, _, c in EXERCISES]
)
def test_exercise(number, notebook, check):
    try:
        getattr(verify, check)()
    except NotImplementedError as err:
        pytest.fail(f"Exercise {number} (notebook {notebook}) not done yet: {err}",
                    pytrace=False)
    except AssertionError as err:
        pytest.fail(f"Exercise {number} (notebook {notebook}): {err}", pytrace=False)
