"""The `notebook_path` parametrisation (one test per notebook) and the course table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"


def notebook_paths() -> list[Path]:
    """The notebooks present, in course order."""
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def pytest_generate_tests(metafunc):
    if "notebook_path" in metafunc.fixturenames:
        paths = notebook_paths()
        metafunc.parametrize("notebook_path", paths, ids=[p.stem for p in paths])


@pytest.fixture(scope="session")
def course() -> list[dict]:
    """notebooks/course.json: [{file, title, minutes, summary}, ...] in course order."""
    table = json.loads((NOTEBOOKS / "course.json").read_text(encoding="utf-8"))
    return table["notebooks"]
