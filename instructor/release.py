"""The student edition: the repository with every solution region and derivation out.

Notebooks: each code cell tagged ``exercise`` holds its solution between two marker
lines (``### BEGIN SOLUTION`` / ``### END SOLUTION``); the region becomes
``raise NotImplementedError("Exercise 2.2: f")``. Markdown cells tagged ``derivation``
(the worked answers) are dropped, and so are cells tagged ``complete-only`` (text that
is true of the complete edition only, e.g. "this edition holds the solutions").

Python files (the learner's ``bn_helpers/batchnorm.py``): a region is announced by the
comment ``# Exercise N.M (notebook NN): ...`` on the line directly above
``### BEGIN SOLUTION``; it sits in a function body and is the last thing in that
function, so the stub leaves no unreachable code. It becomes
``raise NotImplementedError("Exercise 3.7: batchnorm_backward: implement it in
bn_helpers/batchnorm.py (notebook 03)")`` (``ClassName.method`` for a method).

Anything that looks like a marker but is not exactly one, an unbalanced marker, a region
without its comment or not at the end of its function, or a derivation that is not
tagged stops the release: a typo must never publish a solution.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import nbformat

__all__ = [
    "BEGIN", "END", "strip_solutions", "strip_python", "release", "INSTRUCTOR_ONLY",
]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
# top-level folders and files that stay with the instructor
INSTRUCTOR_ONLY = ("tests", ".ci", "instructor", "tools/bench_grading.py")
# the Makefile and README sections after/between these lines are instructor-only
MAKEFILE_CUT = "# ---- instructor only"
README_BEGIN, README_END = "<!-- instructor -->", "<!-- /instructor -->"
STUDENT_TESTS = Path(__file__).resolve().parent / "student_tests"

_EXERCISE_ID = re.compile(r"(?:Exercise|练习) ?(\d+\.\d+)")  # English, Chinese
_DEF = re.compile(r"^\s*def (\w+)\(", re.M)
_NEAR_MARKER = re.compile(r"(?i)^\s*#+\s*(begin|end)\s*solu")
_PY_PROMPT = re.compile(r"^\s*# Exercise (\d+\.\d+) \(notebook (\d\d)\)")
_DETAILS = re.compile(r"(?i)<summary>\s*derivation")


# ------------------------------------------------------------------------ notebooks


def _exercise_number(nb, index: int) -> str:
    """'2.1' from the nearest 'Exercise 2.1' at or above cell `index`."""
    for cell in reversed(nb.cells[: index + 1]):
        found = _EXERCISE_ID.findall(cell.source)
        if found:
            return found[-1]
    return "?"


def _label(number: str, code_above: str) -> str:
    """'Exercise 2.1: batchnorm_forward', named by the nearest def above the region."""
    names = _DEF.findall(code_above)
    return f"Exercise {number}: {names[-1] if names else 'your code'}"


def _strip_cell(source: str, number: str, where: str) -> str:
    out, inside, regions = [], False, 0
    for line in source.splitlines():
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise ValueError(f"{where}: {BEGIN!r} twice without {END!r}")
            inside, regions = True, regions + 1
            indent = line[: len(line) - len(line.lstrip())]
            label = _label(number, "\n".join(out))
            out.append(f'{indent}raise NotImplementedError("{label}")')
        elif marker == END:
            if not inside:
                raise ValueError(f"{where}: {END!r} without {BEGIN!r}")
            inside = False
        elif _NEAR_MARKER.match(line):
            raise ValueError(
                f"{where}: {marker!r} looks like a solution marker but is not exactly "
                f"{BEGIN!r} or {END!r}; the solution would be released"
            )
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: {BEGIN!r} without {END!r}")
    if not regions:
        raise ValueError(
            f"{where}: a cell tagged 'exercise' has no {BEGIN!r} ... {END!r} region; "
            f"its solution would be released"
        )
    return "\n".join(out)


def strip_solutions(nb, name: str = "notebook"):
    """Return a copy of `nb` with solution regions stubbed and derivation cells dropped.

    Raises ValueError for unbalanced or misspelt markers, an ``exercise`` cell without
    a solution region, a marker outside an ``exercise`` cell, a ``derivation`` tag on a
    code cell, or a collapsed derivation in a cell not tagged ``derivation``.
    """
    nb = nbformat.from_dict(nb)  # deep copy
    kept = []
    for i, cell in enumerate(nb.cells):
        where = f"{name}, cell {i} (id {cell.get('id', 'none')})"
        tags = cell.metadata.get("tags", [])
        if "derivation" in tags:
            if cell.cell_type != "markdown":
                raise ValueError(f"{where}: the 'derivation' tag belongs on markdown")
            continue
        if "complete-only" in tags:  # text about the complete edition itself
            continue
        if cell.cell_type == "markdown" and _DETAILS.search(cell.source):
            raise ValueError(
                f"{where}: a collapsed Derivation in a cell not tagged 'derivation' "
                "would be released"
            )
        kept.append(cell)
        if "exercise" not in tags:
            if any(_NEAR_MARKER.match(ln) for ln in cell.source.splitlines()):
                raise ValueError(
                    f"{where}: solution markers outside a code cell tagged "
                    "'exercise' would be released as they are"
                )
            continue
        if cell.cell_type != "code":
            raise ValueError(f"{where}: the 'exercise' tag belongs on a code cell")
        cell.source = _strip_cell(cell.source, _exercise_number(nb, i), where)
        cell.outputs, cell.execution_count = [], None
    nb.cells = kept
    return nb


# ------------------------------------------------------------------- python files


def _functions(tree):
    """(node, qualified name) of every def, with 'Class.method' for methods."""
    found = []

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((child, prefix + child.name))
                walk(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                walk(child, prefix + child.name + ".")
            else:
                walk(child, prefix)

    walk(tree, "")
    return found


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _regions(lines, where):
    """[(begin index, end index)] of the marker pairs (0-based line indices)."""
    regions, begin = [], None
    for i, line in enumerate(lines):
        marker = line.strip()
        if marker == BEGIN:
            if begin is not None:
                raise ValueError(f"{where}:{i + 1}: {BEGIN!r} twice without {END!r}")
            begin = i
        elif marker == END:
            if begin is None:
                raise ValueError(f"{where}:{i + 1}: {END!r} without {BEGIN!r}")
            regions.append((begin, i))
            begin = None
        elif _NEAR_MARKER.match(line):
            raise ValueError(
                f"{where}:{i + 1}: {marker!r} looks like a solution marker but is not "
                f"exactly {BEGIN!r} or {END!r}; the solution would be released"
            )
    if begin is not None:
        raise ValueError(f"{where}:{begin + 1}: {BEGIN!r} without {END!r}")
    return regions


def strip_python(source: str, relpath: str = "bn_helpers/batchnorm.py") -> str:
    """`source` with each solution region replaced by its NotImplementedError stub.

    `relpath` is the file's path in the repository, named in the stub's message.
    Raises ValueError (with file and line) when a region breaks the marker format.
    """
    lines = source.splitlines()
    regions = _regions(lines, relpath)
    if not regions:
        return source
    try:
        funcs = _functions(ast.parse(source))
    except SyntaxError as err:
        raise ValueError(f"{relpath}: not valid Python: {err}") from err
    out, last = [], 0
    for b, e in regions:
        where = f"{relpath}:{b + 1}"
        prompt = _PY_PROMPT.match(lines[b - 1]) if b else None
        if not prompt or _indent(lines[b - 1]) != _indent(lines[b]):
            raise ValueError(
                f"{where}: the line above {BEGIN!r} must be the comment "
                "'# Exercise N.M (notebook NN): ...' at the same indentation"
            )
        # 1-based, BEGIN is line b+1 and END line e+1; a def holding the region has
        # its first line above BEGIN and a statement below it
        inside = [(f, q) for f, q in funcs if f.lineno <= b and f.end_lineno >= b + 2]
        if not inside or not any(ln.strip() for ln in lines[b + 1:e]):
            raise ValueError(
                f"{where}: a solution region must hold code, inside a function"
            )
        func, qualname = max(inside, key=lambda fq: fq[0].lineno)  # innermost
        body_indent = _indent(lines[func.body[0].lineno - 1])
        if _indent(lines[b]) != body_indent:
            raise ValueError(
                f"{where}: the region must sit directly in the body of {qualname}, "
                "not inside an if/for/with"
            )
        after = [
            j for j in range(e + 1, func.end_lineno)
            if lines[j].strip() and _indent(lines[j]) >= body_indent
        ]
        if after or func.end_lineno > e:
            raise ValueError(
                f"{relpath}:{e + 1}: the region must be the last thing in {qualname}: "
                "code after it would be unreachable in the student edition"
            )
        number, notebook = prompt.groups()
        stub = (
            f'{" " * body_indent}raise NotImplementedError("Exercise {number}: '
            f'{qualname}: implement it in {relpath} (notebook {notebook})")'
        )
        out += lines[last:b] + [stub]
        last = e + 1
    out += lines[last:]
    stripped = "\n".join(out) + ("\n" if source.endswith("\n") else "")
    try:
        ast.parse(stripped)
    except SyntaxError as err:  # e.g. a function left with an empty body
        raise ValueError(f"{relpath}: the stubbed file is not valid Python: {err}")
    return stripped


# ------------------------------------------------------------------- the edition


def _tracked_files(root: Path) -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=root, check=True, capture_output=True
        ).stdout.decode()
        return [Path(p) for p in out.split("\0") if p]
    except (OSError, subprocess.CalledProcessError) as err:
        raise RuntimeError(f"release needs a git checkout at {root}: {err}") from err


def _instructor_only(rel: Path) -> bool:
    return any(rel.parts[0] == p or rel.as_posix() == p for p in INSTRUCTOR_ONLY)


def student_makefile(text: str) -> str:
    """The Makefile without its instructor-only tail (and those names in .PHONY)."""
    head, _, tail = text.partition(MAKEFILE_CUT)
    gone = set(re.findall(r"^([\w.-]+):", tail, re.M))
    return re.sub(
        r"^(\.PHONY:.*)$",
        lambda m: " ".join(w for w in m.group(1).split() if w not in gone),
        head, flags=re.M,
    ).rstrip() + "\n"


def student_readme(text: str) -> str:
    """The README without the instructor section (between the two HTML comments) and
    without the lines marked ``<!-- instructor-only -->`` (rows of a table)."""
    text = "".join(ln for ln in text.splitlines(keepends=True)
                   if "<!-- instructor-only -->" not in ln)
    while README_BEGIN in text:
        head, _, rest = text.partition(README_BEGIN)
        if README_END not in rest:
            raise ValueError(f"README.md: {README_BEGIN} without {README_END}")
        text = head.rstrip() + "\n\n" + rest.partition(README_END)[2].lstrip()
    return text


def release(root: str | Path, out: str | Path) -> list[Path]:
    """Copy the repository's tracked files to `out` as the student edition.

    Left out: tests/, .ci/, instructor/ and the grading benchmark. Notebooks and .py
    files lose their solution regions, notebooks their derivation cells; the Makefile
    and README lose their instructor sections; tests/ is the student's own suite
    (instructor/student_tests). Returns the files that were rewritten. `out` must be
    new or empty; nothing is written if any file refuses (all files are stripped first).
    """
    root, out = Path(root).resolve(), Path(out).resolve()
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"out must be a new or empty folder, got non-empty {out}")
    plan: list[tuple[Path, object]] = []  # (destination, rewritten text or source)
    for rel in _tracked_files(root):
        if _instructor_only(rel) or not (root / rel).is_file():
            continue
        src = root / rel
        if rel.suffix == ".ipynb":
            nb = strip_solutions(nbformat.read(src, as_version=4), str(rel))
            plan.append((rel, nbformat.writes(nb) + "\n"))
        elif rel.suffix == ".py":
            text = src.read_text(encoding="utf-8")
            stripped = strip_python(text, rel.as_posix())
            plan.append((rel, stripped if stripped != text else src))
        elif rel.as_posix() == "Makefile":
            plan.append((rel, student_makefile(src.read_text(encoding="utf-8"))))
        elif rel.as_posix() == "README.md":
            plan.append((rel, student_readme(src.read_text(encoding="utf-8"))))
        else:
            plan.append((rel, src))
    for test in sorted(STUDENT_TESTS.glob("*.py")):
        plan.append((Path("tests") / test.name, test.read_text(encoding="utf-8")))
    written = []
    for rel, what in plan:
        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(what, Path):
            shutil.copy2(what, dst)
        else:
            dst.write_text(what, encoding="utf-8")
            written.append(dst)
    return written
