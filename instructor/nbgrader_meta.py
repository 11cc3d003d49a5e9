"""nbgrader cell metadata from the course's tags, so an nbgrader course runs these
notebooks unchanged (``nbgrader generate_assignment`` / ``autograde``).

    python -m instructor.nbgrader_meta                  # every notebooks/NN_*.ipynb
    python -m instructor.nbgrader_meta --check          # exit 1 if any is out of sync
    python -m instructor.nbgrader_meta path.ipynb ...

The tags are the source of truth; this writes ``cell.metadata.nbgrader``:

- ``exercise`` code cell: solution (nbgrader clears its ``### BEGIN SOLUTION`` region);
- ``check`` cell after an exercise that has points in notebooks/course.json: an
  autograded test, locked, with that exercise's points shared among its checks;
- ``derivation`` markdown cell: a manually graded answer worth 0 points (nbgrader
  replaces its text by "YOUR ANSWER HERE" in the release: the worked answer is out);
- every other cell: no nbgrader metadata.

``grade_id`` is built from the exercise number and the cell id, so it is stable.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import nbformat

from instructor.release import _exercise_number

__all__ = ["apply", "main"]

REPO = Path(__file__).resolve().parent.parent
SCHEMA = 3


def _meta(grade_id: str, *, solution=False, grade=False, locked=False, points=None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked,
            "schema_version": SCHEMA, "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return meta


def _gid(kind: str, number: str, cell) -> str:
    return f"{kind}-{number.replace('.', '_')}-{cell.get('id') or 'noid'}"


def apply(nb, points: dict[str, float]) -> bool:
    """Set the nbgrader metadata of `nb` in place; return whether anything changed."""
    before = [json.dumps(c.metadata.get("nbgrader"), sort_keys=True) for c in nb.cells]
    checks: dict[str, list] = {}
    current = None  # the exercise the following checks belong to
    for i, cell in enumerate(nb.cells):
        tags = cell.metadata.get("tags", [])
        cell.metadata.pop("nbgrader", None)
        number = _exercise_number(nb, i)
        if "exercise" in tags and cell.cell_type == "code":
            cell.metadata["nbgrader"] = _meta(_gid("ex", number, cell), solution=True)
            current = number
        elif "derivation" in tags and cell.cell_type == "markdown":
            cell.metadata["nbgrader"] = _meta(_gid("derivation", number, cell),
                                              solution=True, grade=True, points=0.0)
        elif "check" in tags and cell.cell_type == "code":
            owner = current if current is not None else number
            if owner in points:
                checks.setdefault(owner, []).append(cell)
    for number, cells in checks.items():
        share = round(points[number] / len(cells), 4)
        for cell in cells:
            cell.metadata["nbgrader"] = _meta(_gid("check", number, cell), grade=True,
                                              locked=True, points=share)
    after = [json.dumps(c.metadata.get("nbgrader"), sort_keys=True) for c in nb.cells]
    return before != after


def _points() -> dict[str, float]:
    table = json.loads((REPO / "notebooks" / "course.json").read_text(encoding="utf-8"))
    return {k: float(v) for k, v in table.get("points", {}).items()
            if not k.startswith("_")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m instructor.nbgrader_meta",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a notebook is out of sync")
    args = parser.parse_args(argv)
    paths = args.paths or sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    points, stale = _points(), []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if apply(nb, points):
            stale.append(path)
            if not args.check:
                nbformat.write(nb, path)
    for path in stale:
        print(f"{'out of sync' if args.check else 'updated'}: {path}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
