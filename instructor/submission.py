"""Grade one student's folder: package exercises and notebook exercises, sandboxed.

A submission is a folder laid out like the student edition (``bn_helpers/batchnorm.py``
and ``notebooks/NN_*.ipynb``), or flat (``batchnorm.py`` and ``NN_*.ipynb``, as
nbgrader's ``submitted/STUDENT/ASSIGNMENT/`` folders are). Only the graded source is
copied out of it: the learner's ``batchnorm.py`` goes into a fresh copy of the student
edition's ``bn_helpers`` (so nothing else of the submission, e.g. a ``bn_helpers/``
folder with its own ``checks.py``, is ever imported), and a notebook exercise's
function is extracted from its cell. Each exercise then runs in its own sandboxed
process (instructor/sandbox.py) on the hidden cases; its arrays are compared here with
the expected values computed before.
"""

from __future__ import annotations

import ast
import functools
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from instructor import hidden_tests, sandbox, static_check
from instructor.release import strip_python

__all__ = ["Row", "grade_submission", "student_package", "REPO"]

REPO = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).resolve().parent / "_child.py"
MAX_SOURCE = 1 << 20  # bytes: a batchnorm.py larger than this is not read
MAX_NOTEBOOK = 20 << 20
TORCH_ROOTS = ("torch", "functorch", "torchgen")
PREAMBLE = """import numpy as np
try:
    from bn_helpers import batchnorm as bn
except BaseException as _err:  # the learner's module does not import
    class _Broken:
        def __getattr__(self, name, _e=repr(_err)):
            raise ImportError(f"your bn_helpers/batchnorm.py does not import: {_e}")
    bn = _Broken()
"""
TORCH_PREAMBLE = "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n"


@dataclass
class Row:
    student: str
    exercise: str
    points: float
    max: float
    status: str  # pass | partial | fail | flagged | missing | error
    message: str

    def as_dict(self) -> dict:
        return asdict(self)


def load_points(root: Path = REPO) -> dict[str, float]:
    """{exercise number: points} from notebooks/course.json's "points" table."""
    table = json.loads((root / "notebooks" / "course.json").read_text(encoding="utf-8"))
    return {k: float(v) for k, v in table["points"].items() if not k.startswith("_")}


def student_package(root: Path, dest: Path) -> Path:
    """The student edition's bn_helpers (regions stubbed) at dest/bn_helpers."""
    out = dest / "bn_helpers"
    out.mkdir(parents=True)
    for src in sorted((root / "bn_helpers").iterdir()):
        if src.is_file() and src.suffix != ".pyc":
            if src.suffix == ".py":
                text = strip_python(src.read_text(encoding="utf-8"),
                                    f"bn_helpers/{src.name}")
                (out / src.name).write_text(text, encoding="utf-8")
            else:
                shutil.copy2(src, out / src.name)
    return out


# -------------------------------------------------------------- reading the folder


class SubmissionError(Exception):
    """A file of the submission cannot be used (missing, unreadable, unsafe)."""


def _safe_file(folder: Path, path: Path, limit: int) -> bytes:
    """Bytes of `path`, refusing symlinks and files outside `folder` or too big."""
    real_folder = folder.resolve()
    for part in [path, *path.parents]:
        if part == folder or part == folder.parent:
            break
        if part.is_symlink():
            raise SubmissionError(f"{path.relative_to(folder)} is a symlink: not read")
    if not path.resolve().is_relative_to(real_folder):
        raise SubmissionError(f"{path.name} lies outside the submission: not read")
    if not path.is_file():
        raise SubmissionError(f"{path.relative_to(folder)} is not a regular file")
    if path.stat().st_size > limit:
        raise SubmissionError(
            f"{path.relative_to(folder)} is larger than {limit} bytes")
    return path.read_bytes()


def _candidates(folder: Path, pattern: str) -> list[Path]:
    return sorted(
        (p for p in folder.rglob(pattern)
         if not any(part.startswith(".") for part in p.relative_to(folder).parts)),
        key=lambda p: (len(p.parts), str(p)),
    )


def find_module(folder: Path) -> Path | None:
    for path in (folder / "bn_helpers" / "batchnorm.py", folder / "batchnorm.py"):
        if path.exists() or path.is_symlink():
            return path
    found = _candidates(folder, "batchnorm.py")
    return found[0] if found else None


def find_notebook(folder: Path, notebook: str) -> Path | None:
    found = _candidates(folder, f"{notebook}_*.ipynb")
    return found[0] if found else None


def _cell_source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _defines(source: str, name: str) -> bool:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return f"def {name}(" in source
    return any(isinstance(n, ast.FunctionDef) and n.name == name for n in tree.body)


def _tags(cell) -> list:
    meta = cell.get("metadata", {})
    tags = meta.get("tags", []) if isinstance(meta, dict) else []
    return tags if isinstance(tags, list) else []


@dataclass
class _RefCell:
    id: str | None
    order: int  # index among the reference notebook's exercise cells


def reference_cells(root: Path = REPO) -> dict[tuple[str, str], _RefCell]:
    """(notebook NN, function) -> where the instructor's notebook has its exercise."""
    out = {}
    for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        order = 0
        for cell in nb["cells"]:
            if "exercise" not in _tags(cell):
                continue
            try:
                tree = ast.parse(_cell_source(cell))
            except SyntaxError:
                continue
            for node in tree.body:
                if isinstance(node, ast.FunctionDef):
                    out.setdefault((path.name[:2], node.name), _RefCell(cell.get("id"),
                                                                        order))
            order += 1
    return out


def extract_function(nb: dict, name: str, ref: _RefCell | None) -> tuple[str, str]:
    """(source of the imports and defs of the exercise cell, how it was matched)."""
    cells = nb.get("cells")
    if not isinstance(cells, list):
        raise SubmissionError("the notebook has no list of cells")
    code = [c for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"]
    cell, how = None, ""
    if ref and ref.id:
        by_id = [c for c in code if c.get("id") == ref.id]
        if by_id and _defines(_cell_source(by_id[0]), name):
            cell, how = by_id[0], f"cell id {ref.id}"
    if cell is None and ref:
        tagged = [c for c in code if "exercise" in _tags(c)]
        if ref.order < len(tagged) and _defines(_cell_source(tagged[ref.order]), name):
            cell = tagged[ref.order]
            how = (f"no cell with id {ref.id}: matched the exercise cell by its tag "
                   f"and order (exercise cell {ref.order + 1})")
    if cell is None:
        named = [c for c in code if _defines(_cell_source(c), name)]
        if named:
            cell = named[-1]
            how = (f"no cell with id {ref.id if ref else '?'} or tag: matched the "
                   f"last cell that defines {name}()")
    if cell is None:
        raise SubmissionError(f"no code cell defines {name}()")
    source = _cell_source(cell)
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise SubmissionError(f"the cell defining {name}() does not parse: {err}")
    keep = [n for n in tree.body
            if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef,
                              ast.ClassDef))]
    lines = source.splitlines()
    parts = []
    for node in keep:
        start = min([d.lineno for d in getattr(node, "decorator_list", [])]
                    + [node.lineno])
        # blank lines keep the cell's line numbers in tracebacks
        parts.append((start, "\n".join(lines[start - 1:node.end_lineno])))
    out, line = [], 1
    for start, text in parts:
        out.append("\n" * (start - line) + text)
        line = start + text.count("\n") + 1
    return "\n".join(out) + "\n", how


# --------------------------------------------------------------------- comparing


def _compare(case, got: dict, status: str) -> tuple[bool, str]:
    if status != "ok":
        return False, f"case {case.name!r}: {status}"
    problems = []
    for key, expected in case.expected.items():
        value = got.get(key)
        if expected is None:
            if f"{key}#none" not in got:
                problems.append(f"{key}: expected None, got {value!r}")
            continue
        if value is None or f"{key}#none" in got:
            problems.append(f"{key}: missing (returned None)")
            continue
        if value.shape != expected.shape:
            problems.append(f"{key}: shape {value.shape}, expected {expected.shape}")
            continue
        if case.check_dtype and value.dtype != expected.dtype:
            problems.append(f"{key}: dtype {value.dtype}, expected {expected.dtype} "
                            "(keep the dtype of x)")
            continue
        close = np.isclose(value, expected, rtol=case.rtol, atol=case.atol)
        if not close.all():
            err = np.abs(value.astype(np.float64) - expected)
            err = np.where(np.isnan(err), np.inf, err)
            where = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
            problems.append(
                f"{key}: max error {np.max(err):.2g} at {list(map(int, where))} "
                f"(tolerance rtol {case.rtol:g}, atol {case.atol:g})"
            )
    if not problems:
        return True, ""
    hint = ""
    for wrong, message in case.mistakes:
        if all(k in got and got[k].shape == np.shape(v)
               and np.allclose(got[k], v, rtol=1e-6, atol=1e-9)
               for k, v in wrong.items()):
            hint = f" Hint: {message}."
            break
    return False, f"case {case.name!r}: " + "; ".join(problems) + hint


def _read_results(job: Path, cases) -> tuple[dict, dict]:
    out = job / "out"
    status_file, results_file = out / "status.json", out / "results.npz"
    for f in (status_file, results_file):
        if f.is_symlink() or not f.is_file() or f.stat().st_size > 64 << 20:
            return {}, {}
    try:
        status = json.loads(status_file.read_text(encoding="utf-8"))
        with np.load(results_file, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception:  # noqa: BLE001 - whatever the child left is untrusted
        return {}, {}
    got = {c.name: {} for c in cases}
    for key, value in arrays.items():
        case, _, name = key.partition("/")
        if case in got and value.dtype.kind in "biuf":
            got[case][name] = value
    # the child's text is the student's: one line each, bounded
    return ({str(k): " ".join(str(v).split())[:600] for k, v in status.items()}
            if isinstance(status, dict) else {}), got


# ------------------------------------------------------------------------ grading


@dataclass
class Settings:
    timeout: float = 20.0  # seconds per exercise without torch
    torch_timeout: float = 60.0  # with torch (its import alone takes seconds)
    memory: int = 3 << 30


def _write_job(job: Path, ex, package: Path, extra: dict) -> None:
    job.mkdir(parents=True)
    shutil.copy2(CHILD, job / "child.py")
    shutil.copytree(package, job / "pkg" / "bn_helpers")
    arrays = {f"{c.name}/{k}": v for c in ex.cases for k, v in c.arrays.items()}
    np.savez(job / "inputs.npz", **arrays)
    spec = {"kind": ex.kind, "function": ex.function, "recipe": ex.recipe,
            "outputs": list(ex.outputs),
            "cases": [{"name": c.name, "spec": c.spec} for c in ex.cases],
            "block": list(TORCH_ROOTS) if ex.no_torch else []}
    spec.update(extra)
    (job / "job.json").write_text(json.dumps(spec))


@functools.cache
def _torch_dirs() -> tuple[str, ...]:
    import importlib.util

    dirs = []
    for name in TORCH_ROOTS:
        found = importlib.util.find_spec(name)
        if found and found.submodule_search_locations:
            dirs += list(found.submodule_search_locations)
    return tuple(dirs)


def _run_exercise(ex, job: Path, settings: Settings,
                  uses_torch: bool = False) -> tuple[int, list[str]]:
    run = sandbox.run(
        job, timeout=settings.torch_timeout if uses_torch else settings.timeout,
        memory=settings.memory, hide=_torch_dirs() if ex.no_torch else (),
    )
    if run.timed_out:
        return 0, [f"stopped after {run.seconds:.0f} s (time limit): an endless loop "
                   "or far too slow"]
    status, got = _read_results(job, ex.cases)
    if not status:
        why = f"exit code {run.returncode}"
        if run.returncode is not None and run.returncode < 0:
            why = f"killed by signal {-run.returncode}"
        if "MemoryError" in run.stderr:
            why += ", out of memory"
        return 0, [f"your code ended the process ({why}) before it returned results"]
    passed, messages = 0, []
    for case in ex.cases:
        ok, msg = _compare(case, got.get(case.name, {}), status.get(case.name, "no "
                                                                  "result"))
        passed += ok
        if msg:
            messages.append(msg)
    return passed, messages


def grade_submission(folder: str | Path, *, student: str | None = None,
                     package: Path, points: dict[str, float],
                     refs: dict, settings: Settings | None = None,
                     exercises=None) -> list[Row]:
    """One Row per exercise for the student's `folder` (never raises for its content).

    package: the student edition's bn_helpers (``student_package``); points: from
    course.json; refs: ``reference_cells()``.
    """
    folder = Path(folder)
    student = student or folder.name
    settings = settings or Settings()
    exercises = exercises or hidden_tests.build()
    rows = []
    work = Path(tempfile.mkdtemp(prefix="grade-"))
    try:
        module_src, module_err = None, None
        path = find_module(folder)
        if path is None:
            module_err = "missing", "no bn_helpers/batchnorm.py in the submission"
        else:
            try:
                module_src = _safe_file(folder, path, MAX_SOURCE).decode("utf-8")
            except (SubmissionError, UnicodeDecodeError) as err:
                module_err = "error", f"batchnorm.py: {err}"
        notebooks: dict[str, tuple] = {}
        for ex in exercises:
            max_points = points.get(ex.number, 0.0)
            row = Row(student, ex.number, 0.0, max_points, "fail", "")
            rows.append(row)
            label = f"Exercise {ex.number} {ex.function} (notebook {ex.notebook})"
            try:
                notes = _grade_one(ex, folder, work, package, module_src, module_err,
                                   notebooks, refs, settings, row)
            except SubmissionError as err:
                row.status, row.message = "error", f"{label}: {err}"
                continue
            if notes is None:
                continue
            passed, messages = notes
            n = len(ex.cases)
            row.points = round(max_points * passed / n, 2)
            row.status = "pass" if passed == n else "partial" if passed else "fail"
            head = f"{label}: {passed}/{n} hidden cases pass"
            row.message = " | ".join([head] + ([row.message] if row.message else [])
                                     + messages)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def _grade_one(ex, folder, work, package, module_src, module_err, notebooks, refs,
               settings, row):
    """(cases passed, messages), or None when `row` is already final."""
    job = work / f"ex{ex.number}"
    label = f"Exercise {ex.number} {ex.function} (notebook {ex.notebook})"
    if ex.kind == "package":
        if module_err:
            row.status, row.message = module_err[0], f"{label}: {module_err[1]}"
            return None
        hits = static_check.findings(module_src, ex.function)
        if ex.no_torch and hits:
            return _flag(row, label, "bn_helpers/batchnorm.py", hits, ex)
        _write_job(job, ex, package, {})
        (job / "pkg" / "bn_helpers" / "batchnorm.py").write_text(module_src,
                                                                 encoding="utf-8")
        return _run_exercise(ex, job, settings)
    if ex.notebook not in notebooks:
        notebooks[ex.notebook] = _load_notebook(folder, ex.notebook)
    nb, where = notebooks[ex.notebook]
    if nb is None:
        row.status = "missing" if where.startswith("no ") else "error"
        row.message = f"{label}: {where}"
        return None
    source, how = extract_function(nb, ex.function, refs.get((ex.notebook,
                                                               ex.function)))
    if ex.gradient:
        hits = static_check.findings(source, ex.function, in_package=False,
                                     extra_aliases={"torch", "F", "nn"})
        if hits:
            return _flag(row, label, f"{where}, your exercise cell", hits, ex)
    # torch's import takes seconds: only for cells that name it
    wants_torch = not ex.no_torch and any(w in source for w in ("torch", "F.", "nn."))
    preamble = PREAMBLE + (TORCH_PREAMBLE if wants_torch else "")
    _write_job(job, ex, package, {"preamble": preamble,
                                  "where": f"notebook {ex.notebook}, your cell"})
    (job / "submission.py").write_text(source, encoding="utf-8")
    if module_src is not None and "bn." in source:  # `bn` is the learner's module
        (job / "pkg" / "bn_helpers" / "batchnorm.py").write_text(module_src,
                                                                 encoding="utf-8")
    if not how.startswith("cell id"):
        row.message = f"note: {how}"
    return _run_exercise(ex, job, settings, wants_torch)


def _flag(row, label, where, hits, ex):
    line, text, why = hits[0]
    kind = "a gradient" if ex.gradient else "numpy"
    row.status = "flagged"
    row.message = (f"{label}: scored 0: {where} line {line}: `{text}` {why}; this "
                   f"exercise asks for {kind} code you derive yourself, without "
                   "torch, autograd or the reference")
    return None


def _load_notebook(folder: Path, notebook: str) -> tuple[dict | None, str]:
    path = find_notebook(folder, notebook)
    if path is None:
        return None, f"no {notebook}_*.ipynb in the submission"
    try:
        raw = _safe_file(folder, path, MAX_NOTEBOOK).decode("utf-8")
        nb = json.loads(raw)
    except SubmissionError as err:
        return None, str(err)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, (f"{path.name} is not a readable notebook (truncated or not "
                      f"JSON: {str(err)[:120]})")
    if not isinstance(nb, dict):
        return None, f"{path.name} is not a notebook"
    return nb, path.name
