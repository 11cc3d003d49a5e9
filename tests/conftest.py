"""The `notebook_path` parametrisation (one test per notebook) and the course table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"


def notebook_paths() -> list[Path]:
    """The notebooks present, in course order: English, then the Chinese edition."""
    return sorted(NOTEBOOKS.glob("*.ipynb")) + sorted(
        (NOTEBOOKS / "zh").glob("*.ipynb"))


def notebook_id(path: Path) -> str:
    """'02_bn_forward', or 'zh/02_bn_forward' for the Chinese edition."""
    return path.stem if path.parent == NOTEBOOKS else f"{path.parent.name}/{path.stem}"


def pytest_generate_tests(metafunc):
    if "notebook_path" in metafunc.fixturenames:
        paths = notebook_paths()
        metafunc.parametrize("notebook_path", paths,
                             ids=[notebook_id(p) for p in paths])


@pytest.fixture(scope="session")
def course() -> list[dict]:
    """notebooks/course.json: [{file, title, minutes, summary}, ...] in course order."""
    table = json.loads((NOTEBOOKS / "course.json").read_text(encoding="utf-8"))
    return table["notebooks"]
