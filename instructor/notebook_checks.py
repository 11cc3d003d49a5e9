"""Run a notebook in a fresh kernel and score its visible checks.

This is the course's own test (tests/test_notebooks.py: the worked solutions pass every
check; tests/test_student_edition.py: every stub fails its check). It runs the
notebook's code with the caller's rights, so it is for the course's notebooks only:
student submissions are graded by ``python -m instructor.grading grade-all`` (hidden
tests, sandboxed), never by this module.

An exercise (a code cell tagged ``exercise``) passes when its cell and every check cell
after it (tag ``check``, up to the next exercise) ran without error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from instructor.release import _DEF, _exercise_number, strip_solutions

__all__ = ["ExerciseResult", "grade"]


@dataclass
class ExerciseResult:
    label: str
    passed: bool
    errors: list[str] = field(default_factory=list)


def _execute(nb, folder: Path, timeout: int, kernel_args=()) -> str | None:
    """Run nb in a fresh kernel, in place; return why it stopped early, if it did."""
    from nbclient import NotebookClient  # imported here: only the grader needs it
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(folder)}},
        extra_arguments=list(kernel_args),
    )
    # the kernel imports the bn_helpers of the edition the notebook belongs to, not
    # whatever `pip install -e` put on the path (a student edition must run its stubs)
    env = dict(os.environ)
    edition = folder.resolve().parent
    if (edition / "bn_helpers" / "__init__.py").is_file():
        env["PYTHONPATH"] = os.pathsep.join(
            [str(edition)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    try:
        client.execute(env=env)
    except (CellTimeoutError, DeadKernelError) as err:
        return f"{type(err).__name__}: {str(err)[:200]}"
    return None


def _error_of(cell) -> str | None:
    if cell.get("execution_count") is None:
        return "did not run (execution stopped earlier)"
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            return f"{o['ename']}: {o['evalue']}"[:300]
    return None


def _with_answers(reference, submission):
    """The reference notebook with each exercise cell taken from the submission.

    Cells are matched by id. Checks and everything else come from the reference, so a
    submission cannot pass by editing or untagging a check; a missing answer is stubbed.
    """
    answers = {c.get("id"): c.source for c in submission.cells}
    stubs = strip_solutions(reference, "reference")
    nb = nbformat.from_dict(reference)
    for cell, stub in zip(nb.cells, stubs.cells, strict=True):
        if "exercise" in cell.metadata.get("tags", []):
            cell.source = answers.get(cell.get("id"), stub.source)
    return nb


def grade(path: str | Path, timeout: int = 600, reference: str | Path | None = None,
          figure_guard: bool = False):
    """Execute a notebook in a fresh kernel; return (exercise results, other errors).

    An exercise passes when its cell and every check cell after it (up to the next
    exercise) ran without error; an exercise with no check fails. With `reference` (the
    instructor's notebook), only the exercise cells of `path` are used and the checks
    come from the reference. Errors in cells that are neither exercises nor checks are
    returned separately: the notebook itself is broken, not the student's answer.
    With `figure_guard`, the kernel loads ``bn_helpers.plots``' figure guard and each
    figure it finds illegible (text under 9 px, overlapping labels...) is such an error.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path must be a notebook file, got {path}")
    nb = nbformat.read(path, as_version=4)
    if reference is not None:
        nb = _with_answers(nbformat.read(reference, as_version=4), nb)
    stopped = _execute(nb, path.parent, timeout,
                       ["--ext=bn_helpers.plots"] if figure_guard else ())
    results: list[ExerciseResult] = []
    other: list[str] = [f"execution stopped: {stopped}"] if stopped else []
    checked: list[bool] = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.get("tags", [])
        err = _error_of(cell)
        if "exercise" in tags:
            names = _DEF.findall(cell.source)
            label = f"Exercise {_exercise_number(nb, i)}: "
            label += names[0] if names else "your code"
            results.append(
                ExerciseResult(label, not err, [f"cell {i}: {err}"] * bool(err))
            )
            checked.append(False)
        elif "check" in tags and results:
            checked[-1] = True
            if err:
                results[-1].passed = False
                results[-1].errors.append(f"cell {i}: {err}")
        elif err and not stopped:
            other.append(f"cell {i}: {err}")
    if figure_guard:
        from bn_helpers.plots import figure_guard_failures

        other += [f"figure: {line}" for line in figure_guard_failures(nb)]
    for result, has_check in zip(results, checked, strict=True):
        if not has_check:
            result.passed = False
            result.errors.append("no check cell follows this exercise")
    return results, other
