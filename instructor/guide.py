"""Keep the table in instructor/README.md in step with notebooks/course.json.

    python -m instructor.guide           # rewrite the table between its two markers
    python -m instructor.guide --check   # exit 1 if it is stale (tests run this)

Times and titles come from course.json (its "minutes" are the learner's time); points
from its "points" table, summed per notebook; the learning outcomes stay in the README.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "instructor" / "README.md"
BEGIN, END = "<!-- course-table -->", "<!-- /course-table -->"


def table(root: Path = REPO) -> str:
    path = root / "notebooks" / "course.json"
    course = json.loads(path.read_text(encoding="utf-8"))
    points: dict[str, float] = {}
    numbers: dict[str, list[str]] = {}
    for number, value in course.get("points", {}).items():
        if not number.startswith("_"):
            nb = f"{int(number.split('.')[0]):02d}"
            points[nb] = points.get(nb, 0) + value
            numbers.setdefault(nb, []).append(number)
    lines = ["| # | notebook | learner's time | graded exercises | points |",
             "|---|---|---|---|---|"]
    for entry in course["notebooks"]:
        nb = entry["file"][:2]
        lines.append(
            f"| {nb} | {entry['title']} | {entry['minutes']} min | "
            f"{', '.join(numbers.get(nb, [])) or '-'} | {points.get(nb, 0):g} |")
    total_min = sum(e["minutes"] for e in course["notebooks"])
    lines.append(f"| | **total** | {total_min} min | | {sum(points.values()):g} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    new = pattern.sub(f"{BEGIN}\n{table()}\n{END}", text)
    if args.check:
        if new != text:
            print(f"{README} is stale: run python -m instructor.guide")
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
