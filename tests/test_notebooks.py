"""Execute every notebook top to bottom in a fresh kernel; any error fails its test.

One test per notebook, so `pytest -n 2` runs two notebooks at a time. The kernel starts
in notebooks/, as it does in JupyterLab. Nothing is written back to the files.
"""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

CELL_TIMEOUT = 600  # seconds; generous: a notebook's whole budget is 60 s on 2 cores


@pytest.mark.notebook
def test_notebook_runs(notebook_path):
    nb = nbformat.read(notebook_path, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(notebook_path.parent)}})
    try:
        client.execute()
    except CellExecutionError as err:
        pytest.fail(f"{notebook_path.name} failed:\n{err}", pytrace=False)
