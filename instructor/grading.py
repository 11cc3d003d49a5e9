"""Instructor commands: the student edition, hidden-test grading, the course's checks.

    python -m instructor.grading release student/           # the student edition
    python -m instructor.grading grade SUBMISSION_FOLDER     # one student, feedback
    python -m instructor.grading grade-all SUBMISSIONS --out gradebook.csv --jobs 2
    python -m instructor.grading check notebooks/02_bn_forward.ipynb   # visible checks

``grade`` and ``grade-all`` run the hidden tests (instructor/hidden_tests.py) on the
student's code in a sandbox (instructor/sandbox.py); ``check`` executes a notebook of
the course itself and scores its visible checks (it runs the notebook with your rights:
never use it on a student's file). Run from the repository root.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from instructor.notebook_checks import ExerciseResult, grade
from instructor.release import BEGIN, END, release, strip_python, strip_solutions

__all__ = ["BEGIN", "END", "strip_solutions", "strip_python", "release",
           "ExerciseResult", "grade", "main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m instructor.grading", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    rel = sub.add_parser("release", help="write the student edition of the repository")
    rel.add_argument("out", help="new folder for the student edition")
    rel.add_argument("--root", default=".", help="the course repository (default: .)")
    one = sub.add_parser("grade", help="grade one student's folder on the hidden tests")
    one.add_argument("folder")
    one.add_argument("--strict", action="store_true",
                     help="exit 1 unless every exercise has full marks")
    one.add_argument("--only", help="comma-separated exercise numbers, e.g. 2.1,3.7 "
                     "(one GitHub Classroom test per exercise)")
    many = sub.add_parser("grade-all", help="grade a folder of student folders")
    many.add_argument("submissions", help="one sub-folder per student")
    many.add_argument("--out", default="gradebook.csv", help="CSV gradebook (a .json "
                      "twin and a _feedback folder are written beside it)")
    many.add_argument("--jobs", type=int, default=1, help="students at a time")
    many.add_argument("--force", action="store_true", help="regrade graded students")
    chk = sub.add_parser("check", help="run course notebooks, score the visible checks")
    chk.add_argument("notebooks", nargs="+")
    chk.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    chk.add_argument("--reference", help="instructor notebook whose checks are used")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.cmd == "release":
        for p in release(args.root, args.out):
            print(f"wrote {p}")
        return 0
    if args.cmd in ("grade", "grade-all"):
        from instructor import gradebook  # imports torch: only for grading

        if args.cmd == "grade-all":
            graded, failed = gradebook.grade_all(
                args.submissions, args.out, jobs=args.jobs, force=args.force)
            return 1 if failed else 0
        folder = Path(args.folder)
        if not folder.is_dir():
            print(f"folder must be a student's submission folder, got {folder}")
            return 2
        only = tuple(args.only.split(",")) if args.only else None
        grader = gradebook.Grader(only=only)
        try:
            rows = grader.grade(folder)
        finally:
            grader.close()
        print(gradebook.feedback_text(folder.name, rows), end="")
        got, total = sum(r.points for r in rows), sum(r.max for r in rows)
        print(f"points: {got:g} / {total:g}")
        return 1 if args.strict and got < total else 0
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
    sys.exit(main())
