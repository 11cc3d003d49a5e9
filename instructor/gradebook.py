"""Grade a class: one folder per student, a CSV and JSON gradebook, feedback files.

``grade_all(submissions, out)`` grades every folder in `submissions` (nbgrader's
``submitted/`` or a GitHub Classroom download: one folder per student) with `jobs`
students at a time. It writes

- ``out`` (CSV) and ``out`` with ``.json``: student, exercise, points, max, status,
  message, one row per student and exercise;
- ``<out stem>_feedback/STUDENT.txt``: what the student reads (points, what failed,
  the hint when a typical mistake is recognised);
- ``<out stem>_feedback/.done/STUDENT.json``: the rows of a finished student, so a
  second run skips them (``force=True`` regrades).

A student whose files are missing or broken gets rows saying so; the batch goes on.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from tqdm import tqdm

from instructor import hidden_tests, sandbox
from instructor import submission as sub

__all__ = ["grade_all", "feedback_text", "FIELDS"]

FIELDS = ("student", "exercise", "points", "max", "status", "message")
_SAFE = re.compile(r"[^A-Za-z0-9._@+-]")


def _safe_name(name: str) -> str:
    return _SAFE.sub("_", name)[:100] or "_"


def feedback_text(student: str, rows: list[sub.Row]) -> str:
    got, total = sum(r.points for r in rows), sum(r.max for r in rows)
    lines = [f"Feedback for {student}: {got:g} / {total:g} points", ""]
    for r in rows:
        lines.append(f"Exercise {r.exercise}: {r.points:g} / {r.max:g}  ({r.status})")
        for part in r.message.split(" | "):
            if part:
                lines.append(f"    {part}")
    lines += ["", "Each exercise runs on hidden cases like the visible checks in the "
              "notebooks; fix what a failed case names, then run the visible check "
              "again."]
    return "\n".join(lines) + "\n"


class Grader:
    """What every student's grading shares: hidden tests, the student package."""

    def __init__(self, root: Path = sub.REPO, settings: sub.Settings | None = None,
                 only: tuple[str, ...] | None = None):
        # expected values first, before any student code runs; `only`: exercise numbers
        self.exercises = tuple(e for e in hidden_tests.build()
                               if only is None or e.number in only)
        self.points = sub.load_points(root)
        self.refs = sub.reference_cells(root)
        self._tmp = Path(tempfile.mkdtemp(prefix="grader-pkg-"))
        self.package = sub.student_package(root, self._tmp)
        self.settings = settings or sub.Settings()

    def grade(self, folder: Path, student: str | None = None) -> list[sub.Row]:
        return sub.grade_submission(
            folder, student=student, package=self.package, points=self.points,
            refs=self.refs, settings=self.settings, exercises=self.exercises,
        )

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


def grade_all(submissions: str | Path, out: str | Path, *, jobs: int = 1,
              force: bool = False, grader: Grader | None = None,
              progress: bool = True) -> tuple[int, int]:
    """Grade every student folder; return (students graded, students that failed).

    Failed means the grader itself broke on that student (reported in the gradebook);
    a student's broken files are graded as such and do not count as failed.
    """
    submissions, out = Path(submissions), Path(out)
    if not submissions.is_dir():
        raise NotADirectoryError(f"submissions must be a folder of student folders, "
                                 f"got {submissions}")
    students = sorted(p for p in submissions.iterdir()
                      if p.is_dir() and not p.name.startswith("."))
    feedback = out.parent / f"{out.stem}_feedback"
    done = feedback / ".done"
    done.mkdir(parents=True, exist_ok=True)
    todo = [p for p in students
            if force or not (done / f"{_safe_name(p.name)}.json").is_file()]
    own = grader is None
    grader = grader or Grader()
    failed, failed_rows = 0, {}

    def one(folder: Path) -> tuple[str, list[sub.Row], bool]:
        # the grader's own failure (not the student's code, which only ever runs in a
        # sandbox) may be transient, e.g. a fork refused under load: one more try
        for attempt in (1, 2):
            try:
                return folder.name, grader.grade(folder, folder.name), True
            except Exception as err:  # noqa: BLE001 - one student never stops the batch
                frame = traceback.extract_tb(err.__traceback__)[-1]
                why = (f"{type(err).__name__}: {err} (at {Path(frame.filename).name}"
                       f":{frame.lineno}, attempt {attempt} of 2)")
        row = sub.Row(folder.name, "*", 0.0, 0.0, "error",
                      f"the grader failed on this submission: {why}")
        return folder.name, [row], False

    start = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [pool.submit(one, f) for f in todo]
            bar = tqdm(as_completed(futures), total=len(futures), unit="student",
                       desc=f"grading ({sandbox.isolation()})", disable=not progress)
            for fut in bar:
                name, rows, ok = fut.result()
                safe = _safe_name(name)
                (feedback / f"{safe}.txt").write_text(feedback_text(name, rows),
                                                      encoding="utf-8")
                if ok:
                    (done / f"{safe}.json").write_text(
                        json.dumps([r.as_dict() for r in rows]), encoding="utf-8")
                else:
                    failed += 1
                    (done / f"{safe}.json").unlink(missing_ok=True)
                    failed_rows[name] = rows
    finally:
        if own:
            grader.close()
    _write_gradebook(out, students, done, failed_rows)
    seconds = time.monotonic() - start
    if progress and todo:
        print(f"graded {len(todo)} students in {seconds:.1f} s "
              f"({60 * len(todo) / max(seconds, 1e-9):.1f} students per minute, "
              f"--jobs {jobs}); gradebook {out}, feedback in {feedback}/")
    return len(todo) - failed, failed


def _write_gradebook(out: Path, students: list[Path], done: Path,
                     failed_rows: dict[str, list[sub.Row]]) -> None:
    rows = []
    for folder in students:
        path = done / f"{_safe_name(folder.name)}.json"
        if path.is_file():
            rows += json.loads(path.read_text(encoding="utf-8"))
        elif folder.name in failed_rows:
            rows += [r.as_dict() for r in failed_rows[folder.name]]
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
