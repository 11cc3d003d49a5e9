"""Seconds to grade one student's whole course on the hidden tests, and students per
minute with --jobs 1 and 2 (target: one student <= 15 s on 2 cores, no re-training).

    python -m tools.bench_grading [--students 4]   # from the repository root

Each student is a copy of the worked solutions (bn_helpers/batchnorm.py and the
notebooks), so every exercise runs all its cases. Instructor-only: not in the student
edition. On a loaded machine the absolute times are inflated; compare ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from instructor import gradebook, sandbox

REPO = Path(__file__).resolve().parent.parent
BUDGET = 15.0  # seconds per student, 2 cores


def _class(folder: Path, n: int) -> Path:
    subs = folder / "class"
    for i in range(n):
        student = subs / f"student{i:02d}"
        (student / "bn_helpers").mkdir(parents=True)
        shutil.copy(REPO / "bn_helpers" / "batchnorm.py", student / "bn_helpers")
        shutil.copytree(REPO / "notebooks", student / "notebooks")
    return subs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=4)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    grader = gradebook.Grader()
    setup = time.perf_counter() - start
    print(f"isolation: {sandbox.isolation()}; hidden tests and expected values: "
          f"{setup:.1f} s (once per batch), {len(grader.exercises)} exercises")
    with tempfile.TemporaryDirectory() as tmp:
        subs = _class(Path(tmp), args.students)
        start = time.perf_counter()
        rows = grader.grade(subs / "student00")
        one = time.perf_counter() - start
        got, total = sum(r.points for r in rows), sum(r.max for r in rows)
        verdict = "within" if one <= BUDGET else "OVER"
        print(f"one student's whole course: {one:.1f} s ({verdict} the {BUDGET:.0f} s "
              f"budget), {got:g}/{total:g} points for the worked solutions; load "
              f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        for jobs in (1, 2):
            start = time.perf_counter()
            gradebook.grade_all(subs, Path(tmp) / f"gb{jobs}.csv", jobs=jobs,
                                grader=grader, progress=False)
            secs = time.perf_counter() - start
            print(f"--jobs {jobs}: {args.students} students in {secs:.1f} s = "
                  f"{60 * args.students / secs:.1f} students per minute "
                  f"(300 students: {300 * secs / args.students / 60:.0f} min)")
    grader.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
