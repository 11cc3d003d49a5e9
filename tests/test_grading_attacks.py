"""Hostile submissions (issue 8's table and tampering list): each scores 0 for the
exercise it attacks, never changes another exercise's or student's score, the
grader's files, or leaves a process behind. The worked solutions score full marks.

Submissions are built from the course's own bn_helpers/batchnorm.py (the worked
solutions) with one function redefined at the end of the module (a later def wins).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest

from instructor import gradebook, sandbox
from instructor import submission as sub

ROOT = Path(__file__).resolve().parent.parent
SOLVED = (ROOT / "bn_helpers" / "batchnorm.py").read_text(encoding="utf-8")
WRONG_FORWARD = '''

def batchnorm_forward(x, gamma, beta, eps=1e-5):
    return x + 1.0, None
'''
SECRET = "s3cret-grader-token-481516"
MARKER = "survivor-marker-2342"
PROTECTED = [ROOT / "bn_helpers" / "checks.py",
             ROOT / "notebooks" / "02_bn_forward.ipynb",
             ROOT / "instructor" / "hidden_tests.py"]

pytestmark = pytest.mark.skipif(not sandbox.have_bwrap(),
                                reason="bubblewrap not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def grader():
    g = gradebook.Grader(only=("2.1", "3.7", "4.2", "0.1"))
    yield g
    g.close()


def _student(tmp_path, name, module=SOLVED, notebooks=("00",)):
    folder = tmp_path / name
    (folder / "bn_helpers").mkdir(parents=True)
    (folder / "notebooks").mkdir()
    if module is not None:
        (folder / "bn_helpers" / "batchnorm.py").write_text(module, encoding="utf-8")
    for nn in notebooks:
        for path in (ROOT / "notebooks").glob(f"{nn}_*.ipynb"):
            shutil.copy(path, folder / "notebooks" / path.name)
    return folder


def _scores(grader, folder):
    return {r.exercise: (r.points, r.max, r.status, r.message)
            for r in grader.grade(folder)}


def _full(scores, *numbers):
    for n in numbers:
        points, max_points, status, msg = scores[n]
        assert points == max_points > 0 and status == "pass", (n, msg)


def _digests():
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in PROTECTED}


def test_worked_solutions_score_full_marks(grader, tmp_path):
    _full(_scores(grader, _student(tmp_path, "solved")), "2.1", "3.7", "4.2", "0.1")


def _attack(grader, tmp_path, body, attacked="2.1"):
    """The solved module with `body` appended; the attacked exercise scores 0 and
    every other one keeps full marks (but 3.7's cache comes from the learner's own
    2.1, so an attack on the forward pass fails the backward too: it touches it)."""
    before = _digests()
    scores = _scores(grader, _student(tmp_path, "attacker", SOLVED + body))
    assert scores[attacked][0] == 0, scores[attacked]
    touched = {attacked, "3.7"} if attacked == "2.1" else {attacked}
    _full(scores, *(n for n in ("2.1", "3.7", "4.2", "0.1") if n not in touched))
    assert _digests() == before, "a submission changed the grader's files"
    return scores[attacked][3]


def test_import_of_the_reference_scores_zero(grader, tmp_path):
    msg = _attack(grader, tmp_path, '''

def batchnorm_forward(x, gamma, beta, eps=1e-5):
    from bn_helpers.batchnorm import batchnorm_forward as _ref
    return _ref(x, gamma, beta, eps)
''')
    assert "line" in msg and "bn_helpers.batchnorm" in msg


def test_reading_the_reference_by_path_finds_nothing(grader, tmp_path):
    ref = ROOT / "bn_helpers" / "batchnorm.py"
    _attack(grader, tmp_path, f'''

def batchnorm_forward(x, gamma, beta, eps=1e-5):
    ns = {{}}
    code = open({str(ref)!r}).read()  # absent in the sandbox
    return x, None
''')


def test_rebinding_checks_scores_zero(grader, tmp_path):
    _attack(grader, tmp_path, WRONG_FORWARD + '''
from bn_helpers import checks as _checks
_checks.check_close = lambda *a, **k: 0.0
_checks.check_true = lambda *a, **k: None
print("1/1 exercises pass")
''')


def test_exception_hooks_score_zero(grader, tmp_path):
    _attack(grader, tmp_path, WRONG_FORWARD + '''
import sys
sys.excepthook = lambda *a, **k: None
try:
    get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)
except NameError:
    pass
''')


def test_monkeypatching_numpy_scores_zero(grader, tmp_path):
    _attack(grader, tmp_path, WRONG_FORWARD + '''
np.allclose = lambda *a, **k: True
np.isclose = lambda a, b, *x, **k: np.ones(np.shape(a), bool)
np.testing.assert_allclose = lambda *a, **k: None
''')


def test_os_exit_scores_zero(grader, tmp_path):
    msg = _attack(grader, tmp_path, '''

def batchnorm_forward(x, gamma, beta, eps=1e-5):
    import os
    os._exit(0)
''')
    assert "ended the process" in msg


def test_sys_exit_scores_zero(grader, tmp_path):
    msg = _attack(grader, tmp_path, '''

def batchnorm_forward(x, gamma, beta, eps=1e-5):
    import sys
    sys.exit(0)
''')
    assert "SystemExit" in msg


def test_hang_scores_zero(grader, tmp_path):
    grader.settings.timeout = 5
    try:
        msg = _attack(grader, tmp_path, '''

def batchnorm_forward(x, gamma, beta, eps=1e-5):
    while True:
        pass
''')
    finally:
        grader.settings.timeout = sub.Settings().timeout
    assert "time limit" in msg


def test_memory_bomb_scores_zero(grader, tmp_path):
    _attack(grader, tmp_path, '''

def batchnorm_forward(x, gamma, beta, eps=1e-5):
    hog = []
    while True:
        hog.append(bytearray(1 << 26))
''')


def test_autograd_for_a_gradient_scores_zero_with_the_line(grader, tmp_path):
    msg = _attack(grader, tmp_path, '''
import torch as _t


def batchnorm_backward(dout, cache):
    x = _t.tensor(cache.x, requires_grad=True)
    g = _t.tensor(cache.gamma.ravel(), requires_grad=True)
    b = _t.zeros_like(g, requires_grad=True)
    y = _t.nn.functional.batch_norm(x, None, None, g, b, True, 0.0, cache.eps)
    y.backward(_t.tensor(dout))
    return x.grad.numpy(), g.grad.numpy(), b.grad.numpy()
''', attacked="3.7")
    assert "scored 0" in msg and "torch" in msg
    assert "line" in msg


def test_tampering_writing_files_and_processes(grader, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_TEST_SECRET", SECRET)
    victim = _student(tmp_path, "victim")
    victim_file = victim / "bn_helpers" / "batchnorm.py"
    outside = tmp_path / "written-by-attacker.txt"
    targets = [str(p) for p in PROTECTED] + [str(victim_file), str(outside)]
    msg = _attack(grader, tmp_path, f'''

def batchnorm_forward(x, gamma, beta, eps=1e-5):
    import os, signal, subprocess, sys
    for path in {targets!r}:
        try:
            with open(path, "a") as f:
                f.write("\\ndef check_close(*a, **k):\\n    return 0.0\\n")
        except OSError:
            pass
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)",
                      {MARKER!r}], start_new_session=True)
    leaked = os.environ.get("GRADER_TEST_SECRET", "")
    for pid in ("1", str(os.getppid())):
        try:
            leaked += open(f"/proc/{{pid}}/environ").read()
        except OSError:
            pass
    try:
        os.kill(os.getppid(), signal.SIGKILL)
        os.kill(-1, signal.SIGKILL)
    except OSError:
        pass
    raise ValueError("leak:" + leaked)
''')
    assert SECRET not in msg
    assert not outside.exists()
    assert victim_file.read_text(encoding="utf-8") == SOLVED
    _full(_scores(grader, victim), "2.1", "3.7", "4.2", "0.1")
    survivors = [p for p in Path("/proc").glob("[0-9]*/cmdline")
                 if MARKER.encode() in _read(p)]
    assert not survivors, "a process of the submission survived its grading"


def _read(path):
    try:
        return path.read_bytes()
    except OSError:
        return b""


def test_a_bn_helpers_folder_in_the_submission_is_never_imported(grader, tmp_path):
    folder = _student(tmp_path, "shadow", SOLVED + WRONG_FORWARD)
    (folder / "bn_helpers" / "__init__.py").write_text("raise SystemExit(3)\n")
    (folder / "bn_helpers" / "_validate.py").write_text("import os\nos._exit(0)\n")
    (folder / "bn_helpers" / "checks.py").write_text(
        "def check_close(*a, **k):\n    return 0.0\n")
    scores = _scores(grader, folder)
    assert scores["2.1"][0] == 0
    _full(scores, "4.2", "0.1")


def test_a_symlink_to_the_reference_is_not_read(grader, tmp_path):
    folder = _student(tmp_path, "linker", module=None)
    (folder / "bn_helpers" / "batchnorm.py").symlink_to(ROOT / "bn_helpers" /
                                                        "batchnorm.py")
    scores = _scores(grader, folder)
    assert scores["2.1"][0] == 0 and "symlink" in scores["2.1"][3]


def _notebook_variant(tmp_path, name, edit):
    folder = _student(tmp_path, name)
    path = next((folder / "notebooks").glob("00_*.ipynb"))
    nb = json.loads(path.read_text(encoding="utf-8"))
    edit(nb)
    path.write_text(json.dumps(nb), encoding="utf-8")
    return folder


def test_notebook_without_cell_ids_is_matched_by_tag_and_order(grader, tmp_path):
    def drop_ids(nb):
        nb["nbformat_minor"] = 4
        for cell in nb["cells"]:
            cell.pop("id", None)
    scores = _scores(grader, _notebook_variant(tmp_path, "colab", drop_ids))
    _full(scores, "0.1")
    assert "tag and order" in scores["0.1"][3]


def test_recreated_exercise_cell_is_matched_and_said(grader, tmp_path):
    def new_ids(nb):
        for cell in nb["cells"]:
            if "exercise" in cell.get("metadata", {}).get("tags", []):
                cell["id"] = "recreated1"
                cell["metadata"] = {}
    scores = _scores(grader, _notebook_variant(tmp_path, "recreated", new_ids))
    _full(scores, "0.1")
    assert "matched" in scores["0.1"][3]


def test_a_notebook_exercise_cell_with_hooks_and_exit(grader, tmp_path):
    def hostile(nb):
        for cell in nb["cells"]:
            if "exercise" in cell.get("metadata", {}).get("tags", []):
                cell["source"] = (
                    "def batch_stats(x):\n    return x.mean(0), x.var(0, ddof=1)\n"
                    "get_ipython().set_custom_exc((BaseException,), "
                    "lambda *a, **k: None)\nimport os\nos._exit(0)\n")
    scores = _scores(grader, _notebook_variant(tmp_path, "nbhostile", hostile))
    assert scores["0.1"][0] == 0 and "m - 1" in scores["0.1"][3]  # the hint
    _full(scores, "2.1", "3.7", "4.2")


def test_batch_goes_on_past_broken_students(grader, tmp_path):
    subs = tmp_path / "class"
    subs.mkdir()
    _student(subs, "a_solved")
    broken = _student(subs, "b_truncated")
    nb_path = next((broken / "notebooks").glob("00_*.ipynb"))
    nb_path.write_text(nb_path.read_text(encoding="utf-8")[:500], encoding="utf-8")
    (subs / "c_empty").mkdir()
    _student(subs, "d_killer", SOLVED + '''

def batchnorm_forward(x, gamma, beta, eps=1e-5):
    import os, signal
    os.kill(os.getppid(), signal.SIGKILL)
    os.killpg(0, signal.SIGKILL)
''')
    out = tmp_path / "gradebook.csv"
    graded, failed = gradebook.grade_all(subs, out, jobs=2, grader=grader,
                                         progress=False)
    assert (graded, failed) == (4, 0)
    rows = json.loads(out.with_suffix(".json").read_text())
    by = {(r["student"], r["exercise"]): r for r in rows}
    assert all(by[("a_solved", n)]["points"] == by[("a_solved", n)]["max"]
               for n in ("2.1", "3.7", "4.2", "0.1"))
    assert by[("b_truncated", "0.1")]["status"] == "error"
    assert "not a readable notebook" in by[("b_truncated", "0.1")]["message"]
    assert by[("b_truncated", "2.1")]["status"] == "pass"
    assert {by[("c_empty", n)]["status"] for n in ("2.1", "0.1")} == {"missing"}
    assert by[("d_killer", "2.1")]["points"] == 0
    assert by[("d_killer", "4.2")]["status"] == "pass"
    feedback = (tmp_path / "gradebook_feedback" / "b_truncated.txt").read_text()
    assert "Exercise 0.1" in feedback and "points" in feedback
    # resumable: a second run grades nobody, --force grades everyone again
    assert gradebook.grade_all(subs, out, grader=grader, progress=False) == (0, 0)
    assert len(json.loads(out.with_suffix(".json").read_text())) == len(rows)


def test_hidden_tests_never_ship(tmp_path):
    from instructor import release

    assert "instructor" in release.INSTRUCTOR_ONLY


def test_reference_cells_cover_every_notebook_exercise():
    refs = sub.reference_cells()
    from instructor import hidden_tests

    for ex in hidden_tests.build():
        if ex.kind == "notebook":
            assert (ex.notebook, ex.function) in refs, (
                f"Exercise {ex.number}: no exercise cell in notebook {ex.notebook} "
                f"defines {ex.function}()")


def test_points_table_matches_the_hidden_tests():
    from instructor import hidden_tests

    assert set(sub.load_points()) == {e.number for e in hidden_tests.build()}


def test_nbformat_reads_what_we_write(tmp_path):
    nbformat.validate(nbformat.read(ROOT / "notebooks" / "00_start_here.ipynb", 4))
