"""Strip what a run leaves in a notebook: outputs, execution counts, widget state.

    python tools/clean_notebooks.py                 # every notebooks/*.ipynb, in place
    python tools/clean_notebooks.py --check         # exit 1, listing the dirty ones
    python tools/clean_notebooks.py path.ipynb ...  # only these files

Also removes per-cell run records (nbclient's "execution" timings, "ExecuteTime") and
view state ("collapsed", "scrolled"): a notebook changes in git only when its content
does. And it stores the kernelspec and language_info that JupyterLab writes when the
kernel starts (from the installed ipykernel), so a notebook opened in Lab is not marked
unsaved before the learner changes anything.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
NB_METADATA_KEYS = ("widgets", "signature")
CELL_METADATA_KEYS = ("execution", "ExecuteTime", "collapsed", "scrolled")
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python",
              "name": "python3"}


def lab_metadata() -> dict:
    """The notebook metadata Lab fills in from the running kernel."""
    from ipykernel.ipkernel import IPythonKernel

    return {"kernelspec": KERNELSPEC,
            "language_info": dict(IPythonKernel.language_info)}


def clean(nb) -> list[str]:
    """Strip `nb` in place; return what was found, e.g. ['cell 3: outputs']."""
    found = [f"notebook metadata: {key}"
             for key in NB_METADATA_KEYS if key in nb.metadata]
    for key in NB_METADATA_KEYS:
        nb.metadata.pop(key, None)
    for key, value in lab_metadata().items():
        if nb.metadata.get(key) != value:
            found.append(f"notebook metadata: {key} differs from what Lab writes")
            nb.metadata[key] = value
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            if cell.get("outputs"):
                found.append(f"cell {i}: outputs")
            if cell.get("execution_count") is not None:
                found.append(f"cell {i}: execution_count")
            cell.outputs = []
            cell.execution_count = None
        for key in CELL_METADATA_KEYS:
            if key in cell.metadata:
                found.append(f"cell {i}: metadata {key}")
                del cell.metadata[key]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path,
                        help="notebooks to clean (default: notebooks/*.ipynb)")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a notebook needs cleaning")
    args = parser.parse_args(argv)
    paths = args.paths or sorted((REPO / "notebooks").glob("*.ipynb"))
    dirty = 0
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        found = clean(nb)
        if not found:
            continue
        dirty += 1
        if args.check:
            print(f"dirty: {path} ({'; '.join(found[:3])}"
                  + (f"; +{len(found) - 3} more" if len(found) > 3 else "") + ")")
        else:
            nbformat.write(nb, path)
            print(f"cleaned: {path} ({len(found)} item(s))")
    if args.check and dirty:
        print(f"{dirty} notebook(s) need `make clean-notebooks`")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
