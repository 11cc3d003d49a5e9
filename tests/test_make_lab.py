"""`make lab` opens the course: as root too, rooted at the repository, at the start
page, with the venv's Lab defaults (no news pop-up, widget state saved).

Runs the real `make lab` in the background on a free port with its own Jupyter config,
data, runtime, settings and workspace folders and no browser, reaches Lab's REST API,
then stops the server (its whole process group).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
START = "notebooks/00_start_here.ipynb"

pytestmark = pytest.mark.xdist_group("browser")  # a server: not beside the browser test


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.geturl(), response.read()


@pytest.fixture
def make_lab(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("no `make` on PATH")
    env = dict(os.environ)
    for name in ("config", "data", "runtime", "settings", "workspaces"):
        folder = tmp_path / name
        folder.mkdir()
        key = {"settings": "JUPYTERLAB_SETTINGS_DIR",
               "workspaces": "JUPYTERLAB_WORKSPACES_DIR"}.get(
                   name, f"JUPYTER_{name.upper()}_DIR")
        env[key] = str(folder)
    port, token = free_port(), secrets.token_hex(16)
    args = (f"--no-browser --ip=127.0.0.1 --port={port} --ServerApp.port_retries=0 "
            f"--IdentityProvider.token={token}")
    log_path = tmp_path / "make-lab.log"
    log = open(log_path, "w")
    server = subprocess.Popen(["make", "-s", "lab", f"LAB_ARGS={args}"], cwd=REPO,
                              env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)  # make and Lab: one group
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                pytest.fail(f"make lab exited ({server.returncode}):\n"
                            + log_path.read_text()[-2000:], pytrace=False)
            try:
                get(f"{base}/api/status?token={token}")
                break
            except OSError:
                assert time.monotonic() < deadline, "Lab did not answer in 90 s"
                time.sleep(0.3)
        yield {"base": base, "token": token, "log": log_path}
    finally:
        stop_group(server)
        log.close()


def stop_group(server: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM to make and Lab; SIGKILL whatever is left after `timeout` seconds."""
    os.killpg(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server.poll()
        try:
            os.killpg(server.pid, 0)  # is any process of the group left?
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.killpg(server.pid, signal.SIGKILL)
    server.wait()


def setting(body: bytes, key: str):
    """The value Lab uses: the user's setting, else the default (overrides.json)."""
    plugin = json.loads(body)
    return plugin["settings"].get(key, plugin["schema"]["properties"][key]["default"])


def test_make_lab_passes_allow_root_only_as_root():
    dry = subprocess.run(["make", "-n", "lab", "LAB_ARGS=--marker"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in dry.replace("\\\n", " ").splitlines()
                if "-m jupyterlab" in ln)
    assert ("--allow-root" in line) == (os.getuid() == 0), line
    assert "--marker" in line and f"--ServerApp.root_dir=\"{REPO}\"" in line


def test_make_lab_serves_the_repository_at_the_start_page(make_lab):
    base, token = make_lab["base"], make_lab["token"]
    # rooted at the repository: the package a learner edits and the start page
    for path in (START, "bn_helpers/batchnorm.py", "README.md"):
        status, _, body = get(f"{base}/api/contents/{path}?content=0&token={token}")
        assert status == 200 and json.loads(body)["path"] == path
    # the landing page is the start notebook
    _, landed, _ = get(f"{base}/?token={token}")
    assert landed.split("?")[0].endswith(f"/lab/tree/{START}"), landed
    # the venv's overrides: no news pop-up, widget state saved with the notebook
    _, _, body = get(f"{base}/lab/api/settings/"
                     f"@jupyterlab/apputils-extension:notification?token={token}")
    assert setting(body, "fetchNews") == "false"
    _, _, body = get(f"{base}/lab/api/settings/"
                     f"@jupyter-widgets/jupyterlab-manager:plugin?token={token}")
    assert setting(body, "saveState") is True
