"""The student edition: no solution or derivation survives, every stub fails loudly,
the checks after each exercise catch it (a check that passes on a stub could never
fail), and the edition reads as one (no instructor files, its own tests)."""

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from instructor import grading

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    grading.release(ROOT, out)
    return out


def _solution_lines(cell):
    src = cell.source
    if grading.BEGIN not in src:
        return []
    body = src.split(grading.BEGIN, 1)[1].split(grading.END, 1)[0]
    return [
        ln.strip()
        for ln in body.splitlines()
        if len(ln.strip()) > 3 and not ln.strip().startswith("#")
    ]


def _derivation(cell):  # the cells the student edition drops
    return bool({"derivation", "complete-only"} & set(cell.metadata.get("tags", [])))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_solution_line_or_derivation_survives(student, path):
    original = nbformat.read(path, as_version=4)
    released = nbformat.read(student / "notebooks" / path.name, as_version=4)
    kept = [c for c in original.cells if not _derivation(c)]
    assert len(kept) == len(released.cells)
    assert [c.id for c in kept] == [c.id for c in released.cells]  # ids stay stable
    text = "\n".join(c.source for c in released.cells)
    near_marker = re.compile(r"(?i)^\s*#+\s*(begin|end)\s*solu", re.M)
    assert not near_marker.search(text)
    assert not re.search(r"(?i)<summary>\s*derivation", text)
    released_lines = {ln.strip() for ln in text.splitlines()}
    for cell in original.cells:
        if _derivation(cell):  # no whole line of a worked derivation survives
            for line in cell.source.splitlines():
                if len(line.strip()) >= 40 and "derivation" in cell.metadata.get(
                        "tags", []):
                    assert line.strip() not in released_lines, (
                        f"derivation line leaked: {line!r}")
    for before, after in zip(kept, released.cells, strict=True):
        for line in _solution_lines(before):
            assert line not in after.source, f"solution line leaked: {line!r}"
        if grading.BEGIN in before.source:
            assert 'raise NotImplementedError("Exercise ' in after.source


def _py_regions(text):
    return re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", text, re.S)


@pytest.mark.parametrize("rel", sorted(
    p.relative_to(ROOT).as_posix() for p in (ROOT / "bn_helpers").glob("*.py")))
def test_no_solution_line_survives_in_the_package(student, rel):
    original = (ROOT / rel).read_text(encoding="utf-8")
    released = (student / rel).read_text(encoding="utf-8")
    assert "### BEGIN SOLUTION" not in released and "### END SOLUTION" not in released
    regions = _py_regions(original)
    outside = re.sub(r"### BEGIN SOLUTION\n.*?### END SOLUTION", "", original,
                     flags=re.S)
    for region in regions:
        for line in region.splitlines():
            code = line.strip()
            # a line may also stand outside the regions (e.g. a return): no more often
            if len(code) > 3 and not code.startswith("#"):
                assert released.count(code) <= outside.count(code), (
                    f"{rel}: solution line leaked: {code!r}")
    assert released.count('raise NotImplementedError("Exercise ') >= len(regions)
    compile(released, rel, "exec")


def test_the_edition_reads_as_one(student):
    assert not any((student / d).exists() for d in ("instructor", ".ci"))
    assert not (student / "tools" / "bench_grading.py").exists()
    assert sorted(p.name for p in (student / "tests").iterdir()) == [
        "test_exercises.py"]
    readme = (student / "README.md").read_text(encoding="utf-8")
    assert "For instructors" not in readme and "instructor" not in readme.lower()
    makefile = (student / "Makefile").read_text(encoding="utf-8")
    assert "instructor" not in makefile and "grade-all" not in makefile
    assert "test:" in makefile and "lab:" in makefile


@pytest.mark.skipif(not (ROOT / "bn_helpers" / "verify.py").exists(),
                    reason="bn_helpers/verify.py (helper pkg) not merged yet")
def test_students_make_test_reports_each_exercise(student):
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=student, capture_output=True, text=True, timeout=600,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 1, out  # tests ran and the stubs fail (not 5: none found)
    assert "1 passed" in out  # bn_helpers is the edition's own
    assert out.count("not done yet") >= 8, out


def test_every_course_notebook_after_00_has_an_exercise():
    """An exercise cell, or a package exercise (a check cell calling verify)."""
    for path in NOTEBOOKS[1:]:
        nb = nbformat.read(path, as_version=4)
        tags = [c.metadata.get("tags", []) for c in nb.cells]
        assert any("exercise" in t for t in tags) or any(
            "check" in t and "verify." in c.source for t, c in zip(tags, nb.cells)
        ), path.name


def test_release_copies_the_package_and_data(student):
    assert (student / "bn_helpers" / "batchnorm.py").is_file()
    assert (student / "data" / "mnist" / "train-images-idx3-ubyte.gz").is_file()
    assert (student / "requirements.txt").is_file()
    assert not (student / "tests" / "conftest.py").exists()  # the instructor's suite
    assert not (student / ".ci").exists()


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS[1:], ids=lambda p: p.stem)
def test_student_edition_runs_and_every_exercise_fails(student, path):
    """Only stubs may fail: the first failing cell raises a stub's NotImplementedError
    (later cells that use the learner's package functions or their results may fail
    in turn), and every exercise of the notebook fails its checks."""
    results, other = grading.grade(student / "notebooks" / path.name)
    errors = other + [e for r in results for e in r.errors]
    assert not any(e.startswith("execution stopped") for e in errors), errors
    by_cell = sorted(errors, key=lambda e: int(re.match(r"cell (\d+)", e).group(1)))
    stub = re.compile(r"NotImplementedError: Exercise \d+\.\d+")
    assert by_cell and stub.search(by_cell[0]), (
        f"the first failure must be an exercise stub, got: {by_cell[:3]}")
    for r in results:
        assert not r.passed, (
            f"{r.label}: its checks pass on a stub, so they cannot fail"
        )
        assert any("NotImplementedError" in e for e in r.errors), r.errors


def _tiny_notebook(tmp_path, answer, check="assert f(2) == 4", with_check=True):
    """A one-exercise notebook: the reference solution is f(x) = 2 * x."""
    cells = [
        nbformat.v4.new_markdown_cell("### Exercise 9.1: double"),
        _exercise(
            f"def f(x):\n    ### BEGIN SOLUTION\n    {answer}\n    ### END SOLUTION"
        ),
    ]
    if with_check:
        cells.append(nbformat.v4.new_code_cell(check))
        cells[-1].metadata["tags"] = ["check"]
    nb = _nb(*cells)
    path = tmp_path / f"nb{len(list(tmp_path.iterdir()))}.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.notebook
def test_grader_scores_and_exit_codes(tmp_path, capsys):
    good = _tiny_notebook(tmp_path, "return 2 * x")
    wrong = _tiny_notebook(tmp_path, "return x + 1")
    assert grading.main(["check", str(good)]) == 0
    assert grading.main(["check", str(wrong)]) == 1
    out = capsys.readouterr().out
    assert "1/1 exercises pass" in out and "0/1 exercises pass" in out


@pytest.mark.notebook
def test_grader_fails_an_exercise_without_a_check(tmp_path):
    path = _tiny_notebook(tmp_path, "return 2 * x", with_check=False)
    results, _ = grading.grade(path)
    assert not results[0].passed
    assert "no check cell" in results[0].errors[0]


@pytest.mark.notebook
def test_grader_survives_a_timeout(tmp_path):
    path = _tiny_notebook(tmp_path, "while True: pass", check="f(2)")
    results, other = grading.grade(path, timeout=3)
    assert not results[0].passed
    assert other and "CellTimeoutError" in other[0]


@pytest.mark.notebook
def test_grader_with_reference_ignores_edited_checks(tmp_path):
    reference = _tiny_notebook(tmp_path, "return 2 * x")
    nb = nbformat.read(reference, as_version=4)
    nb.cells[1].source = "def f(x):\n    return x + 1"  # a wrong answer ...
    nb.cells[2].source = "pass"  # ... and a check edited to pass
    cheat = tmp_path / "cheat.ipynb"
    nbformat.write(nb, cheat)
    assert grading.grade(cheat)[0][0].passed  # without a reference it is fooled
    results, _ = grading.grade(cheat, reference=reference)
    assert not results[0].passed


def _nb(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def _exercise(src):
    c = nbformat.v4.new_code_cell(src)
    c.metadata["tags"] = ["exercise"]
    return c


def test_strip_solutions_labels_the_stub_and_keeps_indentation():
    nb = _nb(
        nbformat.v4.new_markdown_cell("### Exercise 4.2: running averages"),
        _exercise(
            "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n"
            "    ### END SOLUTION\n"
        ),
    )
    out = grading.strip_solutions(nb)
    assert out.cells[1].source == (
        'def f(x):\n    raise NotImplementedError("Exercise 4.2: f")'
    )
    assert nb.cells[1].source.count("return 2 * x") == 1  # the input is not modified


@pytest.mark.parametrize(
    "src,word",
    [
        ("### BEGIN SOLUTION\nx = 1\n", "without"),
        ("x = 1\n### END SOLUTION\n", "without"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "twice"),
    ],
)
def test_unbalanced_markers_are_refused(src, word):
    with pytest.raises(ValueError, match=word):
        grading.strip_solutions(_nb(_exercise(src)))


@pytest.mark.parametrize(
    "marker",
    ["### BEGIN SOLUTON", "## BEGIN SOLUTION", "### begin solution", "# END SOLUTION"],
)
def test_misspelt_markers_are_refused(marker):
    with pytest.raises(ValueError, match="looks like a solution marker"):
        grading.strip_solutions(_nb(_exercise(f"def f():\n    {marker}\n    return 1")))


def test_exercise_cell_without_markers_is_refused():
    with pytest.raises(ValueError, match="no '### BEGIN SOLUTION'"):
        grading.strip_solutions(_nb(_exercise("def f(x):\n    return 2 * x")))


def test_two_regions_are_labelled_by_their_own_def():
    nb = _nb(
        nbformat.v4.new_markdown_cell("Exercise 1.1"),
        _exercise(
            "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
            "def g():\n    ### BEGIN SOLUTION\n    return 2\n    ### END SOLUTION"
        ),
    )
    src = grading.strip_solutions(nb).cells[1].source
    assert '"Exercise 1.1: f"' in src and '"Exercise 1.1: g"' in src


def test_marker_outside_an_exercise_cell_is_refused():
    cell = nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")
    with pytest.raises(ValueError, match="tagged 'exercise'"):
        grading.strip_solutions(_nb(cell))


def test_release_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "x").write_text("keep me")
    with pytest.raises(FileExistsError, match="non-empty"):
        grading.release(ROOT, tmp_path)


# ------------------------------------------------------ solution regions in .py files

PY_OK = '''import numpy as np


def f(x, eps=1e-5):
    """doc"""
    x = np.asarray(x)  # validation stays
    # Exercise 2.1 (notebook 02): Alg. 1.
    ### BEGIN SOLUTION
    if x.any():
        x = x + 1
    return x
    ### END SOLUTION


class _Layer:
    def forward(self, x):
        # Exercise 4.3 (notebook 04): the switch.
        ### BEGIN SOLUTION
        return x
        ### END SOLUTION

    def other(self):
        return 1
'''


def test_strip_python_stubs_each_region_with_the_contract_message():
    out = grading.strip_python(PY_OK)
    assert out.count("raise NotImplementedError") == 2
    assert (
        '    raise NotImplementedError("Exercise 2.1: f: implement it in '
        'bn_helpers/batchnorm.py (notebook 02)")' in out
    )
    assert '"Exercise 4.3: _Layer.forward: implement it in' in out
    assert "x = x + 1" not in out and "x = np.asarray(x)" in out
    assert "# Exercise 2.1 (notebook 02): Alg. 1." in out and "return 1" in out
    ns = {}
    exec(compile(out, "stub", "exec"), ns)
    with pytest.raises(NotImplementedError, match="Exercise 2.1: f"):
        ns["f"](1.0)
    plain = "def g():\n    return 1\n"
    assert grading.strip_python(plain) == plain


@pytest.mark.parametrize(
    "edit,word",
    [
        (("### END SOLUTION\n\n\nclass", "\n\nclass"), "without"),  # END missing
        (("    ### BEGIN SOLUTION\n    if", "    if"), "without"),  # BEGIN missing
        (("### BEGIN SOLUTION\n    if", "### BEGIN SOLUTON\n    if"), "looks like"),
        (("    ### END SOLUTION\n\n\nclass", "    ## END SOLUTION\n\n\nclass"),
         "looks like"),
        (("    # Exercise 2.1 (notebook 02): Alg. 1.\n", ""), "comment"),
        (("    # Exercise 2.1 (notebook 02)", "    # Exercise 2.1 (nb 02)"), "comment"),
        (("    ### END SOLUTION\n\n\nclass",
          "    ### END SOLUTION\n    y = 2\n\n\nclass"),
         "last thing"),
        (("    # Exercise 2.1 (notebook 02): Alg. 1.\n    ### BEGIN SOLUTION\n"
          "    if x.any():\n        x = x + 1\n    return x\n    ### END SOLUTION\n",
          "    if x.any():\n        # Exercise 2.1 (notebook 02): Alg. 1.\n"
          "        ### BEGIN SOLUTION\n        x = x + 1\n        ### END SOLUTION\n"
          "    return x\n"),
         "directly in the body"),
    ],
)
def test_strip_python_refuses_broken_regions(edit, word):
    old, new = edit
    assert old in PY_OK
    with pytest.raises(ValueError, match=word):
        grading.strip_python(PY_OK.replace(old, new, 1))


def test_derivation_cells_are_dropped_and_untagged_ones_refused():
    deriv = nbformat.v4.new_markdown_cell(
        "<details><summary>Derivation</summary>dl/dmu = ...</details>")
    deriv.metadata["tags"] = ["derivation"]
    nb = _nb(nbformat.v4.new_markdown_cell("Exercise 1.1"), deriv)
    assert len(grading.strip_solutions(nb).cells) == 1
    deriv.metadata["tags"] = []
    with pytest.raises(ValueError, match="not tagged 'derivation'"):
        grading.strip_solutions(nb)


def test_complete_only_cells_are_dropped():
    note = nbformat.v4.new_markdown_cell("This is the complete edition: solved.")
    note.metadata["tags"] = ["complete-only"]
    nb = _nb(nbformat.v4.new_markdown_cell("Hello"), note)
    assert [c.source for c in grading.strip_solutions(nb).cells] == ["Hello"]
