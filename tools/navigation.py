"""Keep the course navigation in sync with the course table, ``notebooks/course.json``.

For every notebook of the table that exists, the first and the last cell become a
markdown line linking the previous notebook, the index and the next one (tagged
"navigation"); the cell tagged "course-index" in 00_start_here becomes the course map.
Notebooks not written yet are listed as "coming soon" and never linked.

    python tools/navigation.py           # rewrite what is out of date (idempotent)
    python tools/navigation.py --check   # exit 1, listing the notebooks out of date
    python tools/navigation.py --dir D   # the notebooks (and course.json) in D
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
COURSE_TABLE = NOTEBOOKS / "course.json"
START_PAGE = "00_start_here.ipynb"
NAV_TAG = "navigation"
INDEX_TAG = "course-index"
NAV_IDS = ("nav-top", "nav-bottom")  # fixed cell ids keep reruns byte-identical
NAME_RE = re.compile(r"^(\d\d)_([a-z0-9]+(?:_[a-z0-9]+)*)\.ipynb$")


def load_course(path: Path = COURSE_TABLE) -> list[dict]:
    """The course table: a list of {file, title, minutes, summary}, in reading order.

    Raises ValueError when a file name is not NN_slug.ipynb with NN its position.
    """
    entries = json.loads(Path(path).read_text(encoding="utf-8"))["notebooks"]
    for pos, entry in enumerate(entries):
        missing = {"file", "title", "minutes", "summary"} - entry.keys()
        if missing:
            raise ValueError(f"{path}: entry {pos} lacks {sorted(missing)}")
        match = NAME_RE.match(entry["file"])
        if not match or int(match.group(1)) != pos:
            raise ValueError(f"{path}: entry {pos} has file {entry['file']!r}, "
                             f"expected '{pos:02d}_<slug>.ipynb' (lowercase slug)")
    return entries


def label(entry: dict) -> str:
    """'02 · The BN forward pass': number and title, as the links show them."""
    return f"{entry['file'][:2]} · {entry['title']}"


def nav_markdown(course: list[dict], pos: int, existing: set[str]) -> str:
    """The prev / index / next line for notebook number `pos`."""
    parts = []
    if pos > 0:
        prev = course[pos - 1]
        parts.append(f"[← {label(prev)}]({prev['file']})" if prev["file"] in existing
                     else f"← {label(prev)} (coming soon)")
        parts.append(f"[Course index]({START_PAGE})")
    if pos + 1 < len(course):
        nxt = course[pos + 1]
        parts.append(f"[{label(nxt)} →]({nxt['file']})" if nxt["file"] in existing
                     else f"Next: {label(nxt)} (coming soon)")
    return "**Navigation:** " + " | ".join(parts)


def _hours(minutes: int) -> str:
    h, m = divmod(minutes, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min"


def index_markdown(course: list[dict], existing: set[str]) -> str:
    """The course map: one table row per notebook, linked only when it exists."""
    rows = ["| # | Notebook | Time | What you do |", "|---|---|---|---|"]
    for entry in course:
        num = entry["file"][:2]
        if entry["file"] == START_PAGE:
            name = f"[{entry['title']}]({entry['file']}) (this page)"
        elif entry["file"] in existing:
            name = f"[{entry['title']}]({entry['file']})"
        else:
            name = f"{entry['title']} *(coming soon)*"
        # &nbsp;: never wrapped between number and unit
        minutes = f"{entry['minutes']}&nbsp;min"
        rows.append(f"| {num} | {name} | {minutes} | {entry['summary']} |")
    total = sum(e["minutes"] for e in course)
    ready = sum(e["file"] in existing for e in course)
    return "\n".join(rows + ["", f"{ready} of {len(course)} notebooks available; "
                                 f"the whole course takes about {_hours(total)}."])


def _tags(cell) -> list:
    return cell.get("metadata", {}).get("tags", [])


def _nav_cell(source: str, cell_id: str, with_ids: bool):
    cell = nbformat.v4.new_markdown_cell(source, metadata={"tags": [NAV_TAG]})
    if with_ids:
        cell["id"] = cell_id
    else:
        del cell["id"]
    return cell


def update_notebook(nb, course: list[dict], pos: int, existing: set[str]) -> None:
    """Replace the navigation cells (and, in 00, the course index) of `nb` in place."""
    with_ids = (nb.nbformat, nb.nbformat_minor) >= (4, 5)
    cells = [c for c in nb.cells if NAV_TAG not in _tags(c)]
    line = nav_markdown(course, pos, existing)
    nb.cells = ([_nav_cell(line, NAV_IDS[0], with_ids)] + cells
                + [_nav_cell(line, NAV_IDS[1], with_ids)])
    if course[pos]["file"] == START_PAGE:
        index_cells = [c for c in nb.cells if INDEX_TAG in _tags(c)]
        if len(index_cells) != 1:
            raise ValueError(f"{START_PAGE} needs exactly one markdown cell tagged "
                             f"{INDEX_TAG!r}, found {len(index_cells)}")
        index_cells[0].source = index_markdown(course, existing)


def sync(notebooks_dir: Path = NOTEBOOKS, write: bool = True) -> list[str]:
    """Bring every existing course notebook up to date; return the changed names."""
    course = load_course(notebooks_dir / "course.json")
    existing = {e["file"] for e in course if (notebooks_dir / e["file"]).is_file()}
    strays = sorted(p.name for p in notebooks_dir.glob("*.ipynb")
                    if p.name not in {e["file"] for e in course})
    for name in strays:
        print(f"warning: {name} is not in course.json; left alone", file=sys.stderr)
    changed = []
    for pos, entry in enumerate(course):
        if entry["file"] not in existing:
            continue
        path = notebooks_dir / entry["file"]
        nb = nbformat.read(path, as_version=4)
        before = copy.deepcopy(nb)
        update_notebook(nb, course, pos, existing)
        if nb != before:
            changed.append(entry["file"])
            if write:
                nbformat.write(nb, path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a notebook is out of date")
    parser.add_argument("--dir", type=Path, default=NOTEBOOKS,
                        help="folder with course.json and the notebooks "
                             "(default: notebooks/)")
    args = parser.parse_args(argv)
    changed = sync(args.dir, write=not args.check)
    if args.check:
        for name in changed:
            print(f"navigation out of date: {args.dir / name} (run `make nav`)")
        return 1 if changed else 0
    print(f"navigation: updated {len(changed)} notebook(s)"
          + (": " + ", ".join(changed) if changed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
