"""Notebook hygiene: valid, clean, named and linked as the course table says.

Fast (no kernel): reads the .ipynb files only. The notebooks are *executed* in
test_notebooks.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import nbformat

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
START_PAGE = "00_start_here.ipynb"
NAME_RE = re.compile(r"^(\d\d)_([a-z0-9]+(?:_[a-z0-9]+)*)\.ipynb$")
# [text](target "title") and ![alt](src); <img src="..."> and <a href="..."> in HTML
MD_LINK_RE = re.compile(
    r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^\"']*[\"'])?\s*\)")
HTML_LINK_RE = re.compile(
    r"<(?:img|a)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']+)[\"']", re.I)
CODE_RE = re.compile(r"```.*?```|`[^`\n]*`", re.S)  # links inside code are not links
HEADING_RE = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
TIME_RE = re.compile(r"(?i)\btime\b[^\n]{0,60}?\b(\d+)\s*(?:min|mins|minutes)\b")


def read(path: Path):
    return nbformat.read(path, as_version=4)


def tags(cell) -> list:
    return cell.get("metadata", {}).get("tags", [])


def content_cells(nb) -> list:
    """The cells an author wrote: all but the navigation cells."""
    return [c for c in nb.cells if "navigation" not in tags(c)]


def markdown_text(nb) -> str:
    return "\n\n".join(c.source for c in content_cells(nb) if c.cell_type == "markdown")


def anchor_ids(markdown: str) -> set[str]:
    """Heading anchors as JupyterLab makes them (spaces -> '-') and as GitHub does."""
    ids = set()
    for heading in HEADING_RE.findall(CODE_RE.sub("", markdown)):
        text = re.sub(r"[*_`]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip()
        ids.add(text.replace(" ", "-"))
        ids.add(re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-"))
    return ids


# ---------------------------------------------------------- names and the course table

def test_names_follow_course_table(course):
    names = [p.name for p in sorted(NOTEBOOKS.glob("*.ipynb"))]
    assert names, "no notebooks in notebooks/"
    for name in names:
        assert NAME_RE.match(name), (
            f"{name}: expected NN_slug.ipynb (lowercase, underscores)")
    numbers = [int(name[:2]) for name in names]
    assert numbers == list(range(len(names))), (
        f"notebook numbers must run 00, 01, ... without gaps, got {numbers}")
    expected = [entry["file"] for entry in course[:len(names)]]
    assert names == expected, (
        f"names differ from notebooks/course.json: {names} != {expected}")
    assert len(course) == 10, f"course.json lists {len(course)} notebooks, expected 10"


# ------------------------------------------------------------ one notebook at a time

def test_valid_nbformat_and_kernelspec(notebook_path):
    nb = read(notebook_path)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata.get("kernelspec") == {
        "display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    assert nb.metadata.get("language_info", {}).get("name") == "python"


def test_committed_without_outputs(notebook_path):
    nb = read(notebook_path)
    assert "widgets" not in nb.metadata, "widget state: run `make clean-notebooks`"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], (
                f"cell {i} has outputs: run `make clean-notebooks`")
            assert cell.execution_count is None, (
                f"cell {i} has an execution count: run `make clean-notebooks`")
        assert "execution" not in cell.metadata, f"cell {i} keeps run timings"


def test_navigation_cells(notebook_path):
    nb = read(notebook_path)
    first, last = nb.cells[0], nb.cells[-1]
    for where, cell in (("first", first), ("last", last)):
        assert cell.cell_type == "markdown" and "navigation" in tags(cell), (
            f"the {where} cell is not a navigation cell: run `make nav`")
    if notebook_path.name != START_PAGE:
        assert f"]({START_PAGE})" in first.source, "navigation does not link the index"


def test_structure(notebook_path, course):
    nb = read(notebook_path)
    cells = content_cells(nb)
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# "), (
        "the first cell after the navigation must start with the title, '# ...'")
    text = CODE_RE.sub("", markdown_text(nb))
    assert re.search(r"(?i)learning goals?", text), "no learning goals"
    time = TIME_RE.search(text)
    assert time, "no time estimate, e.g. '**Time:** about 25 minutes'"
    minutes = {e["file"]: e["minutes"] for e in course}[notebook_path.name]
    assert int(time.group(1)) == minutes, (
        f"the notebook says {time.group(0)!r}, notebooks/course.json says {minutes} "
        "minutes: make them agree (then `make nav`)")
    headings = [h.strip("*_ ") for h in HEADING_RE.findall(text)]
    for section in ("Summary", "References"):
        assert any(h.startswith(section) for h in headings), (
            f"no '## {section}' section")


def test_code_cells_import_cleanly(notebook_path):
    for i, cell in enumerate(read(notebook_path).cells):
        if cell.cell_type != "code":
            continue
        assert not re.search(r"\bsys\.path\b", cell.source), (
            f"cell {i} touches sys.path: install the package (pip install -e .)")
        assert not re.search(r"^\s*from\s+\S+\s+import\s+\*", cell.source, re.M), (
            f"cell {i} has a star import")


def test_links_resolve(notebook_path):
    nb = read(notebook_path)
    own_ids = anchor_ids(markdown_text(nb))
    broken = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        source = CODE_RE.sub("", cell.source)
        for target in MD_LINK_RE.findall(source) + HTML_LINK_RE.findall(source):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, mailto:, data:
                continue
            path, _, anchor = unquote(target).partition("#")
            file = (notebook_path.parent / path).resolve() if path else notebook_path
            if not file.exists():
                broken.append(f"cell {i}: {target} (no such file)")
            elif REPO not in file.parents and file != REPO:
                broken.append(f"cell {i}: {target} (outside the repository)")
            elif anchor:
                if file == notebook_path:
                    ids = own_ids
                elif file.suffix == ".ipynb":
                    ids = anchor_ids(markdown_text(read(file)))
                else:
                    ids = anchor_ids(file.read_text(encoding="utf-8"))
                if anchor not in ids:
                    broken.append(f"cell {i}: {target} (no heading with that anchor)")
    assert not broken, "broken links:\n" + "\n".join(broken)


# ------------------------------------------------------------ the index and the tools

def test_start_page_lists_every_notebook():
    nb = read(NOTEBOOKS / START_PAGE)
    index = [c for c in nb.cells if "course-index" in tags(c)]
    assert len(index) == 1, "00_start_here needs one markdown cell tagged course-index"
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        if path.name != START_PAGE:
            assert f"]({path.name})" in index[0].source, (
                f"the index does not link {path.name}")


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True,
                          text=True)


def test_navigation_in_sync():
    result = run_tool("tools/navigation.py", "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_navigation_rewrites_and_is_idempotent(tmp_path):
    shutil.copytree(NOTEBOOKS, tmp_path, dirs_exist_ok=True)
    start = tmp_path / START_PAGE
    nb = read(start)
    nb.cells = [c for c in nb.cells if "navigation" not in tags(c)]  # lose them
    next(c for c in nb.cells if "course-index" in tags(c)).source = "stale"
    nbformat.write(nb, start)
    nav = ("tools/navigation.py", "--dir", str(tmp_path))
    assert run_tool(*nav, "--check").returncode == 1
    first = run_tool(*nav)
    assert first.returncode == 0, first.stderr
    assert START_PAGE in first.stdout, first.stdout
    second = run_tool(*nav)
    assert "updated 0 notebook" in second.stdout, second.stdout
    assert run_tool(*nav, "--check").returncode == 0
    nb = read(start)
    assert "navigation" in tags(nb.cells[0]) and "navigation" in tags(nb.cells[-1])
    index = next(c for c in nb.cells if "course-index" in tags(c)).source
    assert "| 09 |" in index, "the index lists the whole course, written or not"
    for path in sorted(tmp_path.glob("*.ipynb")):
        assert f"]({path.name})" in index, f"the index does not link {path.name}"


def test_clean_notebooks_tool(tmp_path):
    dirty = tmp_path / START_PAGE
    nb = read(NOTEBOOKS / START_PAGE)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.execution_count = 3
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi\n")]
    code.metadata["execution"] = {"iopub.status.idle": "2026-11-26T08:00:00Z"}
    nb.metadata["widgets"] = {
        "application/vnd.jupyter.widget-state+json": {"state": {}}}
    nbformat.write(nb, dirty)
    check = run_tool("tools/clean_notebooks.py", "--check", str(dirty))
    assert check.returncode == 1 and START_PAGE in check.stdout, check.stdout
    assert run_tool("tools/clean_notebooks.py", str(dirty)).returncode == 0
    assert run_tool("tools/clean_notebooks.py", "--check", str(dirty)).returncode == 0
    assert read(dirty).cells == read(NOTEBOOKS / START_PAGE).cells


def test_clean_notebooks_stores_what_lab_writes(tmp_path):
    """Lab fills in kernelspec and language_info from the kernel on open; the tool
    stores the same, so opening a notebook does not mark it unsaved."""
    from ipykernel.ipkernel import IPythonKernel

    path = tmp_path / "trimmed.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("1 + 1")]
    nb.metadata = {"language_info": {"name": "python"}}
    nbformat.write(nb, path)
    check = run_tool("tools/clean_notebooks.py", "--check", str(path))
    assert check.returncode == 1 and "language_info" in check.stdout, check.stdout
    assert run_tool("tools/clean_notebooks.py", str(path)).returncode == 0
    meta = read(path).metadata
    assert meta["language_info"] == IPythonKernel.language_info
    assert meta["language_info"]["version"] == "{}.{}.{}".format(*sys.version_info)
    assert meta["kernelspec"]["name"] == "python3"


def test_notebooks_store_what_lab_writes(notebook_path):
    from ipykernel.ipkernel import IPythonKernel

    info = read(notebook_path).metadata.get("language_info")
    assert info == IPythonKernel.language_info, (
        "run `make clean-notebooks`: Lab would rewrite language_info on open")
