"""nbgrader runs the course unchanged: instructor/nbgrader_meta.py derives the cell
metadata from the tags, `nbgrader generate_assignment` releases 02 and 03 with the
solutions cleared, and `nbgrader autograde` gives the worked solutions full marks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from instructor import nbgrader_meta

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ("02_bn_forward.ipynb", "03_bn_backward.ipynb")
CONFIG = """c = get_config()
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_assignments = [dict(name="bn")]
c.CourseDirectory.db_students = [dict(id="alice")]
c.ExecutePreprocessor.timeout = 600
"""

nbgrader = pytest.importorskip("nbgrader", reason="nbgrader is a test tool "
                               "(requirements.txt); pip install nbgrader==0.9.6")


def _nbgrader(course: Path, *args: str) -> None:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    run = subprocess.run([Path(sys.executable).parent / "nbgrader", *args, "--force"],
                         cwd=course, env=env, capture_output=True, text=True,
                         timeout=1200)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]


def test_metadata_follows_the_tags():
    nb = nbformat.read(ROOT / "notebooks" / "02_bn_forward.ipynb", as_version=4)
    nbgrader_meta.apply(nb, {"2.1": 3.0})
    for cell in nb.cells:
        tags, meta = cell.metadata.get("tags", []), cell.metadata.get("nbgrader")
        if "exercise" in tags:
            assert meta["solution"] and not meta["grade"]
        elif "derivation" in tags:
            assert meta["solution"] and meta["grade"] and meta["points"] == 0
        elif meta:
            assert "check" in tags and meta["grade"] and meta["locked"]
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells
           if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids))
    assert not nbgrader_meta.apply(nb, {"2.1": 3.0})  # in sync: a second run is a no-op


@pytest.mark.notebook
def test_generate_assignment_and_autograde_02_and_03(tmp_path):
    from nbgrader.api import Gradebook

    course = tmp_path / "course"
    source = course / "source" / "bn"
    source.mkdir(parents=True)
    for name in NOTEBOOKS:
        shutil.copy(ROOT / "notebooks" / name, source / name)
    assert nbgrader_meta.main([str(p) for p in source.iterdir()]) == 0
    (course / "nbgrader_config.py").write_text(CONFIG.format(root=str(course)))
    _nbgrader(course, "generate_assignment", "bn")
    for name in NOTEBOOKS:
        released = (course / "release" / "bn" / name).read_text()
        assert "### BEGIN SOLUTION" not in released
        assert "<summary>Derivation" not in released
    submitted = course / "submitted" / "alice" / "bn"
    shutil.copytree(source, submitted)  # alice hands in the worked solutions
    _nbgrader(course, "autograde", "bn")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        sub = gb.find_submission("bn", "alice")
        scores = {nb.name: (nb.score, nb.max_score) for nb in sub.notebooks}
        total = (sub.score, sub.max_score)
    assert set(scores) == {n.removesuffix(".ipynb") for n in NOTEBOOKS}
    assert total[1] > 0 and total[0] == total[1], scores
