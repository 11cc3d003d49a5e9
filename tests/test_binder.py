"""Binder (repo2docker) configuration: CPU torch, Python 3.11, same pins, postBuild.

repo2docker reads only binder/ when it exists; `repo2docker --no-build` prints the
Dockerfile it would build, without Docker, which lints the whole configuration.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BINDER = REPO / "binder"
TEST_TOOLS_MARKER = "# --- test tools (not needed on Binder) ---"
CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"


def pins(lines: list[str]) -> dict[str, str]:
    """{'numpy': '2.4.6', ...} from requirement lines; comments and options skipped."""
    found = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        name, sep, version = line.partition("==")
        assert sep, f"not an exact pin: {line!r}"
        found[re.sub(r"[-_.]+", "-", name.strip().lower())] = version.strip()
    return found


def test_requirements_have_test_tools_section():
    lines = (REPO / "requirements.txt").read_text().splitlines()
    assert lines.count(TEST_TOOLS_MARKER) == 1, (
        f"requirements.txt needs the line {TEST_TOOLS_MARKER!r}")
    tools = pins(lines[lines.index(TEST_TOOLS_MARKER):])
    assert {"pytest", "playwright"} <= tools.keys()


def test_binder_requirements_match():
    binder = (BINDER / "requirements.txt").read_text().splitlines()
    assert binder[0] == CPU_INDEX, "the CPU index must be the first line, on its own"
    assert binder[1] == "torch==2.13.0+cpu"
    main = (REPO / "requirements.txt").read_text().splitlines()
    course = pins(main[:main.index(TEST_TOOLS_MARKER)])
    assert course.pop("torch") == "2.13.0"
    assert pins(binder[2:]) == course, (
        "binder/requirements.txt drifted from requirements.txt")


def test_runtime_and_post_build():
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"
    assert not (BINDER / "environment.yml").exists(), "it would win over requirements"
    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK), "binder/postBuild must be executable"
    lines = [ln.strip() for ln in post.read_text().splitlines()]
    code = [ln for ln in lines if ln and not ln.startswith("#")]
    assert lines[0].startswith("#!") and code[0] == "set -e"
    assert "pip install --no-deps -e ." in code
    assert any("binder/overrides.json" in ln for ln in code)
    overrides = json.loads((BINDER / "overrides.json").read_text())
    news = overrides["@jupyterlab/apputils-extension:notification"]
    assert news["fetchNews"] == "false" and news["checkForUpdates"] is False
    syntax = subprocess.run([shutil.which("bash"), "-n", str(post)])
    assert syntax.returncode == 0, "binder/postBuild has a bash syntax error"


def test_repo2docker_dockerfile():
    exe = Path(sys.executable).with_name("repo2docker")
    if not exe.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("repo2docker missing on CI: the Binder lint must run there")
        pytest.skip("repo2docker not installed: pip install -r requirements.txt "
                    "(jupyter-repo2docker is in its test-tools section)")
    result = subprocess.run(
        [str(exe), "--no-build", "--debug", "--user-id", "1000",
         "--user-name", "jovyan", str(REPO)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    dockerfile, log = result.stdout, result.stderr
    assert "Building conda environment for python=3.11" in log, log
    assert "Python version unspecified" not in log
    assert 'pip install --no-cache-dir -r "binder/requirements.txt"' in dockerfile
    assert "RUN ./binder/postBuild" in dockerfile
    others = dockerfile.replace("binder/requirements.txt", "")
    assert "requirements.txt" not in others, "the root requirements.txt is used too"
