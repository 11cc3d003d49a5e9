"""Instructor tools: release a student edition of the course and autograde notebooks.

Exercise cells (tag ``exercise``) hold their solution between two marker lines::

    ### BEGIN SOLUTION
    ...
    ### END SOLUTION

The student edition replaces each region by ``raise NotImplementedError("Exercise 2.1:
batchnorm_forward")``. Each exercise is followed by check cells (tag ``check``); grading
executes a notebook in a fresh kernel and an exercise passes when all its checks ran
without error. Command line::

    python -m bn_helpers.grading release student/       # the whole repo, solutions out
    python -m bn_helpers.grading grade submitted/02_bn_forward.ipynb \\
        --reference notebooks/02_bn_forward.ipynb

With ``--reference``, only the submission's exercise cells are run, inside the
instructor's notebook, so edited or untagged checks do not count.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

__all__ = ["BEGIN", "END", "strip_solutions", "release", "ExerciseResult", "grade"]

INSTRUCTOR_ONLY = ("tests", ".ci")  # top-level folders not released to students
BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
_EXERCISE_ID = re.compile(r"Exercise (\d+\.\d+)")
_DEF = re.compile(r"^\s*def (\w+)\(", re.M)


_NEAR_MARKER = re.compile(r"(?i)^\s*#+\s*(begin|end)\s*solu")


def _exercise_number(nb, index: int) -> str:
    """'2.1' from the nearest 'Exercise 2.1' at or above cell `index`."""
    for cell in reversed(nb.cells[: index + 1]):
        found = _EXERCISE_ID.findall(cell.source)
        if found:
            return found[-1]
    return "?"


def _label(number: str, code_above: str) -> str:
    """'Exercise 2.1: batchnorm_forward', named by the nearest def above the region."""
    names = _DEF.findall(code_above)
    return f"Exercise {number}: {names[-1] if names else 'your code'}"


def _strip_cell(source: str, number: str, where: str) -> str:
    out, inside, regions = [], False, 0
    for line in source.splitlines():
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise ValueError(f"{where}: {BEGIN!r} twice without {END!r}")
            inside, regions = True, regions + 1
            indent = line[: len(line) - len(line.lstrip())]
            label = _label(number, "\n".join(out))
            out.append(f'{indent}raise NotImplementedError("{label}")')
        elif marker == END:
            if not inside:
                raise ValueError(f"{where}: {END!r} without {BEGIN!r}")
            inside = False
        elif _NEAR_MARKER.match(line):
            raise ValueError(
                f"{where}: {marker!r} looks like a solution marker but is not exactly "
                f"{BEGIN!r} or {END!r}; the solution would be released"
            )
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: {BEGIN!r} without {END!r}")
    if not regions:
        raise ValueError(
            f"{where}: a cell tagged 'exercise' has no {BEGIN!r} ... {END!r} region; "
            f"its solution would be released"
        )
    return "\n".join(out)


def strip_solutions(nb, name: str = "notebook"):
    """Return a copy of `nb` with every solution region replaced by a failing stub.

    Raises ValueError for unbalanced or misspelt markers, an ``exercise`` cell without
    a solution region, or a marker outside an ``exercise`` cell.
    """
    nb = nbformat.from_dict(nb)  # deep copy
    for i, cell in enumerate(nb.cells):
        where = f"{name}, cell {i}"
        is_exercise = "exercise" in cell.metadata.get("tags", [])
        if not is_exercise:
            if any(_NEAR_MARKER.match(ln) for ln in cell.source.splitlines()):
                raise ValueError(
                    f"{where}: solution markers outside a code cell tagged "
                    "'exercise' would be released as they are"
                )
            continue
        if cell.cell_type != "code":
            raise ValueError(f"{where}: the 'exercise' tag belongs on a code cell")
        cell.source = _strip_cell(cell.source, _exercise_number(nb, i), where)
        cell.outputs, cell.execution_count = [], None
    return nb


def _tracked_files(root: Path) -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=root, check=True, capture_output=True
        ).stdout.decode()
        return [Path(p) for p in out.split("\0") if p]
    except (OSError, subprocess.CalledProcessError) as err:
        raise RuntimeError(f"release needs a git checkout at {root}: {err}") from err


def release(root: str | Path, out: str | Path) -> list[Path]:
    """Copy the repository's tracked files to `out`, solutions stripped from notebooks.

    The instructor's test suite and CI (``tests/``, ``.ci/``) stay behind: they check
    the worked solutions. Returns the notebooks written. `out` must be new or empty.
    """
    root, out = Path(root).resolve(), Path(out).resolve()
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"out must be a new or empty folder, got non-empty {out}")
    written = []
    for rel in _tracked_files(root):
        if rel.parts[0] in INSTRUCTOR_ONLY:
            continue
        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if rel.suffix == ".ipynb":
            nb = strip_solutions(nbformat.read(root / rel, as_version=4), str(rel))
            nbformat.write(nb, dst)
            written.append(dst)
        else:
            shutil.copy2(root / rel, dst)
    return written


@dataclass
class ExerciseResult:
    label: str
    passed: bool
    errors: list[str] = field(default_factory=list)


def _execute(nb, folder: Path, timeout: int) -> str | None:
    """Run nb in a fresh kernel, in place; return why it stopped early, if it did."""
    from nbclient import NotebookClient  # imported here: only the grader needs it
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(folder)}},
    )
    try:
        client.execute()
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


def grade(path: str | Path, timeout: int = 600, reference: str | Path | None = None):
    """Execute a notebook in a fresh kernel; return (exercise results, other errors).

    An exercise passes when its cell and every check cell after it (up to the next
    exercise) ran without error; an exercise with no check fails. With `reference` (the
    instructor's notebook), only the exercise cells of `path` are used and the checks
    come from the reference. Errors in cells that are neither exercises nor checks are
    returned separately: the notebook itself is broken, not the student's answer.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path must be a notebook file, got {path}")
    nb = nbformat.read(path, as_version=4)
    if reference is not None:
        nb = _with_answers(nbformat.read(reference, as_version=4), nb)
    stopped = _execute(nb, path.parent, timeout)
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
    for result, has_check in zip(results, checked, strict=True):
        if not has_check:
            result.passed = False
            result.errors.append("no check cell follows this exercise")
    return results, other


def _main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bn_helpers.grading", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    rel = sub.add_parser("release", help="write the student edition of the repository")
    rel.add_argument("out", help="new folder for the student edition")
    rel.add_argument("--root", default=".", help="the course repository (default: .)")
    gr = sub.add_parser("grade", help="execute notebooks and score their exercises")
    gr.add_argument("notebooks", nargs="+")
    gr.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    gr.add_argument(
        "--reference",
        help="instructor notebook: take its checks, not the "
        "submission's (use when grading one notebook)",
    )
    args = parser.parse_args(argv)
    if args.cmd == "release":
        for p in release(args.root, args.out):
            print(f"wrote {p}")
        return 0
    failed = 0
    for nb_path in args.notebooks:
        results, other = grade(nb_path, args.timeout, args.reference)
        passed = sum(r.passed for r in results)
        print(f"{nb_path}: {passed}/{len(results)} exercises pass")
        for r in results:
            print(f"  {'PASS' if r.passed else 'FAIL'}  {r.label}")
            for e in r.errors:
                print(f"        {e}")
        for e in other:
            print(f"  ERROR outside the exercises, {e}")
        failed += len(results) - passed + len(other)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(_main())
