"""The student edition: no solution survives, every stub fails loudly, and the checks
after each exercise catch it (a check that passes on a stub could never fail)."""

import re
from pathlib import Path

import nbformat
import pytest

from bn_helpers import grading

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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_solution_line_survives(student, path):
    original = nbformat.read(path, as_version=4)
    released = nbformat.read(student / "notebooks" / path.name, as_version=4)
    assert len(original.cells) == len(released.cells)
    text = "\n".join(c.source for c in released.cells)
    near_marker = re.compile(r"(?i)^\s*#+\s*(begin|end)\s*solu", re.M)
    assert not near_marker.search(text)
    for before, after in zip(original.cells, released.cells, strict=True):
        for line in _solution_lines(before):
            assert line not in after.source, f"solution line leaked: {line!r}"
        if grading.BEGIN in before.source:
            assert 'raise NotImplementedError("Exercise ' in after.source


def test_every_course_notebook_after_00_has_an_exercise():
    for path in NOTEBOOKS[1:]:
        nb = nbformat.read(path, as_version=4)
        assert any("exercise" in c.metadata.get("tags", []) for c in nb.cells), (
            path.name
        )


def test_release_copies_the_package_and_data(student):
    assert (student / "bn_helpers" / "batchnorm.py").is_file()
    assert (student / "data" / "mnist" / "train-images-idx3-ubyte.gz").is_file()
    assert (student / "requirements.txt").is_file()
    assert not (student / "tests").exists() and not (student / ".ci").exists()


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS[1:], ids=lambda p: p.stem)
def test_student_edition_runs_and_every_exercise_fails(student, path):
    results, other = grading.grade(student / "notebooks" / path.name)
    assert other == [], f"cells outside exercises/checks failed: {other}"
    assert results, "no exercise found"
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
    assert grading._main(["grade", str(good)]) == 0
    assert grading._main(["grade", str(wrong)]) == 1
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
