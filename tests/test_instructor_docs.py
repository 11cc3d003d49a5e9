"""The instructor guide's table and the GitHub Classroom template agree with
notebooks/course.json and the hidden tests."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from instructor import guide, hidden_tests

ROOT = Path(__file__).resolve().parent.parent
POINTS = json.loads((ROOT / "notebooks" / "course.json").read_text())["points"]


def test_guide_table_is_in_step_with_course_json():
    assert guide.main(["--check"]) == 0, "run: python -m instructor.guide"


def test_classroom_workflow_grades_every_package_exercise_with_its_points():
    flow = yaml.safe_load((ROOT / "instructor" / "github-classroom" /
                           "classroom.yml").read_text())
    steps = flow["jobs"]["grade"]["steps"]
    graders = [s for s in steps if "autograding-command-grader" in s.get("uses", "")]
    package = {e.number for e in hidden_tests.build() if e.kind == "package"}
    seen = {}
    for step in graders:
        number = step["with"]["command"].split("--only ")[1].split()[0]
        seen[number] = step["with"]["max-score"]
        assert step["with"]["test-name"].startswith(f"Exercise {number} ")
    assert seen == {n: POINTS[n] for n in package}
    reporter = next(s for s in steps if "grading-reporter" in s.get("uses", ""))
    assert reporter["with"]["runners"].split(",") == [s["id"] for s in graders]
