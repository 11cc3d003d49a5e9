"""The student edition: no solution survives, every stub fails loudly, and the checks
after each exercise catch it (a check that passes on a stub could never fail)."""

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
    assert "SOLUTION" not in text
    for before, after in zip(original.cells, released.cells):
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


@pytest.mark.notebook
def test_grader_gives_full_marks_to_the_solutions():
    results, other = grading.grade(ROOT / "notebooks" / "02_bn_forward.ipynb")
    assert other == [] and results and all(r.passed for r in results)


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


def test_marker_outside_an_exercise_cell_is_refused():
    cell = nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")
    with pytest.raises(ValueError, match="tagged 'exercise'"):
        grading.strip_solutions(_nb(cell))


def test_release_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "x").write_text("keep me")
    with pytest.raises(FileExistsError, match="non-empty"):
        grading.release(ROOT, tmp_path)
