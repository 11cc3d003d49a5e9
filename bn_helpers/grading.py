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
    python -m bn_helpers.grading grade student/notebooks/02_bn_forward.ipynb
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

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
_EXERCISE_ID = re.compile(r"Exercise (\d+\.\d+)")
_DEF = re.compile(r"^\s*def (\w+)\(", re.M)


def _exercise_label(nb, index: int) -> str:
    """'Exercise 2.1: batchnorm_forward' from the nearest heading above and the def."""
    number = "?"
    for cell in reversed(nb.cells[: index + 1]):
        found = _EXERCISE_ID.findall(cell.source)
        if found:
            number = found[-1]
            break
    head = nb.cells[index].source.split(BEGIN)[0]
    names = _DEF.findall(head)
    return f"Exercise {number}: {names[-1] if names else 'your code'}"


def _strip_cell(source: str, label: str, where: str) -> str:
    out, inside = [], False
    for line in source.splitlines():
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise ValueError(f"{where}: {BEGIN!r} twice without {END!r}")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f'{indent}raise NotImplementedError("{label}")')
        elif marker == END:
            if not inside:
                raise ValueError(f"{where}: {END!r} without {BEGIN!r}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: {BEGIN!r} without {END!r}")
    return "\n".join(out)


def strip_solutions(nb, name: str = "notebook"):
    """Return a copy of `nb` with every solution region replaced by a failing stub.

    Raises ValueError for unbalanced markers or a marker outside an ``exercise`` cell.
    """
    nb = nbformat.from_dict(nb)  # deep copy
    for i, cell in enumerate(nb.cells):
        if BEGIN not in cell.source and END not in cell.source:
            continue
        where = f"{name}, cell {i}"
        if cell.cell_type != "code" or "exercise" not in cell.metadata.get("tags", []):
            raise ValueError(
                f"{where}: solution markers outside a code cell tagged "
                "'exercise' would be released as they are"
            )
        cell.source = _strip_cell(cell.source, _exercise_label(nb, i), where)
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

    Returns the notebooks written. `out` must not exist or be empty.
    """
    root, out = Path(root).resolve(), Path(out).resolve()
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"out must be a new or empty folder, got non-empty {out}")
    written = []
    for rel in _tracked_files(root):
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


def _execute(path: Path, timeout: int):
    from nbclient import NotebookClient  # imported here: only the grader needs it

    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    return nb


def _error_of(cell) -> str | None:
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            return f"{o['ename']}: {o['evalue']}"[:300]
    return None


def grade(path: str | Path, timeout: int = 600):
    """Execute a notebook in a fresh kernel; return (exercise results, other errors).

    An exercise passes when the check cells that follow it all ran without error. Errors
    in cells that are neither exercises nor checks are returned separately: they mean
    the notebook itself is broken, not the student's answer.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path must be a notebook file, got {path}")
    nb = _execute(path, timeout)
    results: list[ExerciseResult] = []
    other: list[str] = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.get("tags", [])
        err = _error_of(cell)
        if "exercise" in tags:
            errors = [f"cell {i}: {err}"] if err else []
            results.append(ExerciseResult(_exercise_label(nb, i), not err, errors))
        elif "check" in tags and results:
            if err:
                results[-1].passed = False
                results[-1].errors.append(f"cell {i}: {err}")
        elif err:
            other.append(f"cell {i}: {err}")
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
    args = parser.parse_args(argv)
    if args.cmd == "release":
        for p in release(args.root, args.out):
            print(f"wrote {p}")
        return 0
    failed = 0
    for nb_path in args.notebooks:
        results, other = grade(nb_path, args.timeout)
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
