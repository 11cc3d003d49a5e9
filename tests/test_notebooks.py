"""Execute every notebook top to bottom in a fresh kernel: no cell may fail, the
grader gives the worked solutions full marks (so every check is reachable and passes),
and the figure guard (bn_helpers.plots, loaded as a kernel extension) finds every figure
legible: no text under 9 px, no labels overlapping, nothing cut off.

One test per notebook, so `pytest -n 2` runs two notebooks at a time. The kernel starts
in notebooks/, as it does in JupyterLab. Nothing is written back to the files.
"""

from __future__ import annotations

import pytest

from instructor import grading

CELL_TIMEOUT = 600  # seconds; generous: a notebook's whole budget is 60 s on 2 cores


@pytest.mark.notebook
def test_notebook_runs_and_solutions_pass(notebook_path):
    results, other = grading.grade(notebook_path, timeout=CELL_TIMEOUT,
                                   figure_guard=True)
    failures = other + [f"{r.label}: {e}" for r in results for e in r.errors]
    if failures:
        pytest.fail(f"{notebook_path.name}:\n" + "\n".join(failures), pytrace=False)
