"""Build the Chinese edition (notebooks/zh/) from the English notebooks and a catalogue.

    python tools/zh.py            # write notebooks/zh/*.ipynb (make zh)
    python tools/zh.py --check    # exit 1 if a translation is missing or stale, or a
                                  # written notebook differs from what the build writes
    python tools/zh.py --todo     # print the English of every missing or stale cell
    python tools/zh.py 03_bn_backward ...   # only these notebooks

Each English notebook NN_slug.ipynb has a catalogue notebooks/zh/catalog/NN_slug.json:

    {"cells": {"<cell id>": {"en_sha256": "<sha256 of the English source, 16 hex>",
                             "zh": "<the Chinese markdown>"}}}

Only markdown cells are translated; code cells are the same code as in English, and a
first code cell switches figures, check lines and widgets to Chinese
(``i18n.set_language("zh")``). When an English cell changes, its hash no longer matches
and the translation is stale until a translator updates it (and its hash). Relative
links are rewritten for the deeper folder (``../README.md`` -> ``../../README.md``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
EN_DIR = REPO / "notebooks"
ZH_DIR = EN_DIR / "zh"
CATALOG_DIR = ZH_DIR / "catalog"
SETUP_ID = "zh-setup"
SETUP_SOURCE = (
    "# 中文版：图表、检查结果和控件标签都显示为中文（代码与英文版相同）\n"
    "from bn_helpers import i18n\n"
    "\n"
    'i18n.set_language("zh")'
)
# ](../x) and ](figures/x) in markdown links, src="figures/x" in HTML
_LINK = re.compile(r'(\]\(|src=")(\.\./|figures/)')
_SIBLING = re.compile(r"(\]\()(\d\d_\w+)(?=\.ipynb)")


def en_hash(source: str) -> str:
    """The first 16 hex digits of the sha256 of an English cell's source."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def english_notebooks() -> list[Path]:
    table = json.loads((EN_DIR / "course.json").read_text(encoding="utf-8"))
    return [EN_DIR / entry["file"] for entry in table["notebooks"]]


def translated_notebooks() -> list[Path]:
    """The English notebooks that have a catalogue: the Chinese edition's contents."""
    return [en for en in english_notebooks()
            if (CATALOG_DIR / f"{en.stem}.json").exists()]


def load_catalog(stem: str) -> dict:
    path = CATALOG_DIR / f"{stem}.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def problems(en_path: Path) -> list[str]:
    """What keeps `en_path` from building: missing, stale or orphaned translations."""
    nb = nbformat.read(en_path, as_version=4)
    cat = load_catalog(en_path.stem)
    found = []
    ids = set()
    for cell in nb.cells:
        ids.add(cell.id)
        if cell.cell_type != "markdown":
            continue
        entry = cat.get(cell.id)
        if entry is None or not entry.get("zh", "").strip():
            found.append(f"{en_path.name}: cell {cell.id} has no translation")
        elif entry["en_sha256"] != en_hash(cell.source):
            found.append(f"{en_path.name}: cell {cell.id} is stale (the English "
                         f"changed since it was translated)")
    for cid in sorted(set(cat) - ids):
        found.append(f"{en_path.name}: catalogue entry {cid} has no English cell "
                     f"(remove it)")
    return found


def _localise_links(text: str) -> str:
    """Links for notebooks/zh/: one folder deeper; a notebook not yet translated is
    linked in English."""
    text = _LINK.sub(lambda m: m.group(1) + "../" + m.group(2), text)
    return _SIBLING.sub(lambda m: m.group(1) + ("" if (
        CATALOG_DIR / f"{m.group(2)}.json").exists() else "../") + m.group(2), text)


def build(en_path: Path):
    """The Chinese notebook for `en_path` (ValueError if a translation is missing)."""
    bad = problems(en_path)
    if bad:
        raise ValueError("\n".join(bad))
    nb = nbformat.read(en_path, as_version=4)
    cat = load_catalog(en_path.stem)
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = _localise_links(cat[cell.id]["zh"])
    setup = nbformat.v4.new_code_cell(SETUP_SOURCE)
    setup.id = SETUP_ID
    nb.cells.insert(first_code, setup)
    nb.metadata["language_info"] = nb.metadata.get("language_info", {"name": "python"})
    return nb


def _text(nb) -> str:
    return nbformat.writes(nb) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if anything is missing or stale")
    parser.add_argument("--todo", action="store_true",
                        help="print the English of every missing or stale cell")
    parser.add_argument("names", nargs="*",
                        help="notebook stems to build (default: all with a catalogue)")
    args = parser.parse_args(argv)
    notebooks = english_notebooks() if args.todo else translated_notebooks()
    if args.names:
        unknown = set(args.names) - {en.stem for en in notebooks}
        if unknown:
            parser.error(f"names must be notebook stems from course.json, got "
                         f"{sorted(unknown)}")
        notebooks = [en for en in english_notebooks() if en.stem in args.names]
    bad = [p for en in notebooks for p in problems(en)]
    if args.todo:
        for en in notebooks:
            nb = nbformat.read(en, as_version=4)
            cat = load_catalog(en.stem)
            for cell in nb.cells:
                entry = cat.get(cell.id, {})
                if cell.cell_type == "markdown" and entry.get(
                        "en_sha256") != en_hash(cell.source):
                    print(f"=== {en.stem} {cell.id} {en_hash(cell.source)}\n"
                          f"{cell.source}\n")
        return 0
    missing = [en.stem for en in english_notebooks() if en not in notebooks]
    if missing and not args.names:
        print(f"not translated yet (no catalogue): {', '.join(missing)}")
    if bad:
        print("\n".join(bad))
        print(f"{len(bad)} problem(s): translate in notebooks/zh/catalog/, then make zh")
        return 1
    differ = 0
    for en in notebooks:
        want = _text(build(en))
        out = ZH_DIR / en.name
        have = out.read_text(encoding="utf-8") if out.exists() else None
        if have == want:
            continue
        differ += 1
        if args.check:
            print(f"out of date: {out.relative_to(REPO)} (run make zh)")
        else:
            out.write_text(want, encoding="utf-8")
            print(f"wrote {out.relative_to(REPO)}")
    return 1 if args.check and differ else 0


if __name__ == "__main__":
    sys.exit(main())
