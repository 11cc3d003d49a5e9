"""`grade-all` on 20 generated submissions (solved, partial, broken, missing, hostile):
the gradebook holds the expected points for every student, the batch never stops, and
the command-line wrapper exits 0 when it graded everyone."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from instructor import gradebook, grading, sandbox

ROOT = Path(__file__).resolve().parent.parent
SOLVED = (ROOT / "bn_helpers" / "batchnorm.py").read_text(encoding="utf-8")
ONLY = ("2.1", "4.2", "0.1")

KINDS = {  # kind: (module source or None, how to spoil notebook 00, expected points)
    "solved": (SOLVED, None, {"2.1": 3, "4.2": 2, "0.1": 1}),
    "wrong_forward": (SOLVED + "\n\ndef batchnorm_forward(x, gamma, beta, eps=1e-5):\n"
                      "    return (x - x.mean(0)) / (x.std(0) + eps), None\n", None,
                      {"2.1": 0, "4.2": 2, "0.1": 1}),
    "eps_outside": (SOLVED + "\n\ndef batchnorm_inference(x, gamma, beta, mean, var, "
                    "eps=1e-5):\n    return gamma * (x - mean) / (np.sqrt(var) + eps)"
                    " + beta\n", None, {"2.1": 3, "4.2": 0, "0.1": 1}),
    "syntax_error": ("def batchnorm_forward(:\n", None, {"2.1": 0, "4.2": 0, "0.1": 1}),
    "missing": (None, "delete", {"2.1": 0, "4.2": 0, "0.1": 0}),
    "truncated": (SOLVED, "truncate", {"2.1": 3, "4.2": 2, "0.1": 0}),
    "no_ids": (SOLVED, "no_ids", {"2.1": 3, "4.2": 2, "0.1": 1}),
    "exits": (SOLVED + "\n\ndef batchnorm_inference(*a, **k):\n    import os\n"
              "    os._exit(1)\n", None, {"2.1": 3, "4.2": 0, "0.1": 1}),
    "hangs": (SOLVED + "\n\ndef batchnorm_forward(*a, **k):\n    while True:\n"
              "        pass\n", None, {"2.1": 0, "4.2": 2, "0.1": 1}),
    "torch": (SOLVED + "\nimport torch\n\n\ndef batchnorm_inference(x, gamma, beta, "
              "mean, var, eps=1e-5):\n    t = torch.from_numpy\n    return "
              "torch.nn.functional.batch_norm(t(x), t(mean), t(var), t(gamma), "
              "t(beta), False, 0.0, eps).numpy()\n", None,
              {"2.1": 3, "4.2": 0, "0.1": 1}),
}
# 20 students: more of the common kinds
CLASS = (["solved"] * 5 + ["wrong_forward"] * 3 + ["eps_outside"] * 2
         + ["syntax_error", "missing", "truncated", "no_ids", "exits", "hangs", "torch",
            "solved", "wrong_forward", "no_ids"])


def _spoil(path: Path, how: str) -> None:
    if how == "delete":
        path.unlink()
    elif how == "truncate":
        path.write_text(path.read_text(encoding="utf-8")[:300], encoding="utf-8")
    elif how == "no_ids":
        nb = json.loads(path.read_text(encoding="utf-8"))
        nb["nbformat_minor"] = 4
        for cell in nb["cells"]:
            cell.pop("id", None)
        path.write_text(json.dumps(nb), encoding="utf-8")


@pytest.mark.skipif(not sandbox.have_bwrap(), reason="bubblewrap not installed")
def test_grade_all_twenty_students(tmp_path, monkeypatch):
    subs = tmp_path / "submissions"
    expected = {}
    for i, kind in enumerate(CLASS):
        module, spoil, points = KINDS[kind]
        folder = subs / f"s{i:02d}_{kind}"
        (folder / "bn_helpers").mkdir(parents=True)
        if module is not None:
            (folder / "bn_helpers" / "batchnorm.py").write_text(module)
        nb = folder / "00_start_here.ipynb"  # the flat (nbgrader-like) layout
        shutil.copy(ROOT / "notebooks" / "00_start_here.ipynb", nb)
        if spoil:
            _spoil(nb, spoil)
        expected[folder.name] = points
    grader = gradebook.Grader(only=ONLY)
    grader.settings.timeout = 8
    monkeypatch.setattr(gradebook, "Grader", lambda: grader)
    out = tmp_path / "gradebook.csv"
    code = grading.main(["grade-all", str(subs), "--out", str(out), "--jobs", "2"])
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    broken = [r for r in rows if r["exercise"] == "*"]
    assert code == 0 and not broken, f"exit code {code}; the grader broke on: {broken}"
    assert len(rows) == 20 * len(ONLY)
    got = {}
    for r in rows:
        got.setdefault(r["student"], {})[r["exercise"]] = float(r["points"])
        assert float(r["max"]) > 0 and r["status"] and r["message"]
    assert got == {s: {k: float(v) for k, v in p.items()} for s, p in expected.items()}
    json_rows = json.loads(out.with_suffix(".json").read_text())
    assert len(json_rows) == len(rows)
    feedback = sorted((tmp_path / "gradebook_feedback").glob("*.txt"))
    assert len(feedback) == 20
    assert "Hint: eps is outside the square root" in (
        tmp_path / "gradebook_feedback" / "s08_eps_outside.txt").read_text()


class _FlakyGrader:
    """Breaks on its first `failures` calls for a student (the grader's fault)."""

    def __init__(self, failures: int):
        self.failures, self.calls = failures, {}

    def grade(self, folder, student):
        self.calls[student] = self.calls.get(student, 0) + 1
        if self.calls[student] <= self.failures:
            raise OSError(11, "Resource temporarily unavailable")
        return [gradebook.sub.Row(student, "2.1", 3.0, 3.0, "pass", "ok")]


@pytest.mark.parametrize("failures, graded", [(1, 2), (2, 0)])
def test_a_grader_failure_is_retried_once_then_reported(tmp_path, failures, graded):
    for name in ("alice", "bob"):
        (tmp_path / "subs" / name).mkdir(parents=True)
    out = tmp_path / "gradebook.csv"
    grader = _FlakyGrader(failures)
    done, failed = gradebook.grade_all(tmp_path / "subs", out, grader=grader,
                                       progress=False)
    assert (done, failed) == (graded, 2 - graded)
    assert grader.calls == {"alice": min(failures + 1, 2), "bob": min(failures + 1, 2)}
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if failures == 1:
        assert [(r["student"], r["points"]) for r in rows] == [("alice", "3.0"),
                                                               ("bob", "3.0")]
    else:
        assert [r["exercise"] for r in rows] == ["*", "*"]
        assert all("Errno 11" in r["message"] and "attempt 2 of 2" in r["message"]
                   for r in rows)
