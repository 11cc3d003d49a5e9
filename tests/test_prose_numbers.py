"""Every measured number a notebook's prose states is backed by an output or a check.

A markdown cell may state a number that a computation produced only if
(1) a code cell *above* it printed that number (stdout or a text result; the prose may
    round it: "0.3" is backed by a printed 0.27, "3.7" is not backed by 3.47), or
(2) it is written in the source of a code cell (a setting such as lr 0.5, or a bound a
    check asserts, such as `gap < 0.01`), anywhere in the notebook.

Which tokens count ("measured-number tokens"), after masking what is not prose:
* percentages: ``55 %``, ``98%``, ``0.3 percent`` (integer or decimal before the sign);
* ratios: ``3.7 times``, ``2.6-fold``, ``10x``, ``5×`` (not ``28x28``, ``500 × 100``);
* decimals: ``0.52``, ``8.5``, ``1.2e-5`` (any number with a decimal point).
Plain integers ("99 of 100 checkpoints", "50,000 steps") do not count.

Masked first (never scanned): display math ``$$...$$``, code spans and fenced code,
headings, link targets and URLs, arXiv ids, dotted versions (``2.13.0``), and references
to numbered things: ``Sec. 4.1``, ``Sections 2-3``, ``Alg. 1``, ``Exercise 7.1``,
``Definition 2.1``, ``Fig. 3``, ``Table 2``, ``Eq. 4``, ``notebook 06`` (with lists as
``Sec. 3.4, 4.2.1``), and the course's exercise numbers also where they stand bare
(``(3.8)``). Navigation cells (tag ``navigation``) are skipped. Inline math
``$...$`` *is* scanned: a measured number does not become exact by typesetting it.
Numbers that are not measurements and cannot be moved into code (a figure quoted from a
paper) go into ``ALLOWED`` below with the reason.

The executed notebooks come from a cache directory (``$BN_EXECUTED_NOTEBOOKS``, default
``<tmp>/bn_executed_notebooks``), keyed by a hash of the notebook and of the bn_helpers
sources and data checksums, so a run of the notebook tests that saves there is reused;
otherwise the test executes the notebook itself (nbclient, fresh kernel). From the
command line, ``python tests/test_prose_numbers.py notebooks/07_paper_figure1.ipynb``
executes (or reuses) and lists the unbacked numbers.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"

# {notebook stem: {token as written: why it is not a measurement}}
ALLOWED: dict[str, dict[str, str]] = {
    "02_bn_forward": {
        "0.019": "closed form: t(1) - sig(1) = 3/4 - 1/(1 + e^-1), not a measurement"},
    "04_inference": {
        "0.99": "a convention: Keras's default momentum 0.99 is torch's 0.01",
        "99 %": "a chosen fraction in the definition of a forgetting horizon",
        "90 %": "a Think question's parameter (how many batches carry 90 % of the "
                "weight)"},
}

_REF_WORDS = (r"Sec\.|Secs\.|Sections?|Alg\.|Algorithms?|Exercises?|Definitions?|Def\.|"
              r"Figs?\.|Figures?|Tables?|Eqs?\.|Equations?|Theorems?|Lemmas?|"
              r"Appendix|Propositions?|Chapters?|Ch\.|notebooks?|Notebooks?|Issues?|"
              r"Think question|questions?|Step|steps? \d+ of")
_NUM = r"\d+(?:\.\d+)*"
_REFERENCE = re.compile(rf"(?:{_REF_WORDS})\s*\(?{_NUM}(?:\s*(?:,|and|or|-|–|to)\s*"
                        rf"{_NUM}(?![\d.]*\s*(?:%|x\b|×|times|-fold)))*")
_MASKS = [re.compile(p, f) for p, f in (
    (r"\$\$.*?\$\$", re.S),  # display math: equations
    (r"```.*?```", re.S),  # fenced code
    (r"`[^`\n]*`", 0),  # code spans
    (r"^\s*#+ .*$", re.M),  # headings (section numbers)
    (r"\]\([^)]*\)", 0),  # link targets
    (r"https?://\S+", 0),
    (r"arXiv:\s*\d+\.\d+(?:v\d+)?", re.I),
    (r"\b\d+(?:\.\d+){2,}\b", 0),  # versions, section numbers such as 4.2.1
    (r"\b\d+\(\d+\)", 0),  # journal volume(issue)
)]
_SIGNIFICAND = r"\d+(?:\.\d+)?"
_TOKEN = re.compile(
    rf"(?<![\w.])(?P<value>{_SIGNIFICAND}(?:e[+-]?\d+)?)"
    r"(?:(?P<pct>\s?(?:\\?%|percent\b))"
    r"|(?P<ratio>\s?(?:times\b|-fold\b|×(?!\s*\d)|x(?![\w]|\s*\d)))"
    r")?(?![\w.]*\d)", re.I)
_OUTPUT_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][+-]?\d+)?")
_CODE_NUMBER = re.compile(r"(?<![\w.])\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class Unbacked:
    cell: int  # index of the markdown cell
    cell_id: str
    token: str  # as written, e.g. "3.7 times"
    context: str  # the text around it

    def __str__(self) -> str:
        return (f"cell {self.cell} ({self.cell_id}): {self.token!r} in "
                f"'...{self.context}...'")


@functools.cache
def _exercise_ids() -> re.Pattern:
    """The course's exercise numbers ("3.7", from "Exercise 3.7" in any notebook): an
    exercise number is a name, also where the prose writes it bare, as in
    "`batchnorm_backward_alt` (3.8)" or "for 4.1-4.3". (A measured value that happens
    to equal an exercise number is not scanned: a known blind spot.)"""
    ids = set()
    for path in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"):
        text = path.read_text(encoding="utf-8")
        ids.update(re.findall(r"Exercises? (\d+\.\d+)", text))
    alternatives = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
    return re.compile(rf"(?<![\w.])(?:{alternatives or 'x^'})"
                      r"(?![\w.]*\d|[eE][+-]?\d|\s?(?:%|percent|times|-fold|×|x\b))")


def _mask(text: str) -> str:
    for pattern in _MASKS + [_REFERENCE, _exercise_ids()]:
        text = pattern.sub(lambda m: " " * len(m.group(0)), text)
    return text


def tokens(markdown: str) -> list[tuple[str, float, float, bool, int]]:
    """The measured-number tokens of a markdown text: (token, value, half a unit of its
    last digit, is a percentage, position)."""
    out = []
    for m in _TOKEN.finditer(_mask(markdown)):
        value = m.group("value")
        if not (m.group("pct") or m.group("ratio") or "." in value
                or "e" in value.lower()):
            continue  # a plain integer
        mantissa, _, exponent = value.lower().partition("e")
        decimals = len(mantissa.partition(".")[2])
        half = 0.5 * 10.0 ** (int(exponent or 0) - decimals)
        out.append((m.group(0).strip(), float(value), half, bool(m.group("pct")),
                    m.start()))
    return out


def _output_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") in ("execute_result", "display_data"):
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(parts) if all(isinstance(p, str) for p in parts) else ""


def _numbers(text: str, pattern: re.Pattern) -> list[float]:
    found = []
    for s in pattern.findall(text):
        try:
            found.append(float(s.replace(",", "").replace("_", "")))
        except ValueError:
            pass
    return found


def scan(nb, name: str = "") -> list[Unbacked]:
    """The measured-number tokens of `nb`'s markdown that nothing backs (see the module
    docstring). `nb`: an executed notebook (nbformat node or dict)."""
    allowed = ALLOWED.get(name, {})
    code_values = set()
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            code_values.update(_numbers(cell["source"], _CODE_NUMBER))
    printed: list[float] = []  # numbers printed by the code cells above
    missing = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            printed.extend(_numbers(_output_text(cell), _OUTPUT_NUMBER))
            continue
        if cell["cell_type"] != "markdown" or "navigation" in cell.get(
                "metadata", {}).get("tags", []):
            continue
        text = cell["source"]
        for token, value, half, pct, pos in tokens(text):
            if token in allowed:
                continue
            wanted = (value, value / 100) if pct else (value,)
            if any(w in code_values for w in wanted):
                continue  # a setting or a checked bound in a code cell
            tol = half * (1 + 1e-9)
            if any(abs(x - value) <= tol or abs(100 * x - value) <= tol
                   for x in printed):
                continue
            context = " ".join(text[max(0, pos - 40):pos + len(token) + 30].split())
            missing.append(Unbacked(i, cell.get("id", "?"), token, context))
    return missing


# ---------------------------------------------------------------- execution, cached

def _cache_dir() -> Path:
    return Path(os.environ.get("BN_EXECUTED_NOTEBOOKS")
                or Path(tempfile.gettempdir()) / "bn_executed_notebooks")


def _fingerprint(path: Path) -> str:
    """Hash of the notebook and of everything its outputs depend on in the repo."""
    h = hashlib.sha256(path.read_bytes())
    for f in sorted((REPO / "bn_helpers").rglob("*.py")) + sorted(
            (REPO / "data").rglob("SHA256SUMS")):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:16]


def executed(path: Path, timeout: int = 600):
    """The notebook at `path` executed in a fresh kernel (reused from the cache)."""
    from nbclient import NotebookClient

    path = Path(path).resolve()
    cached = _cache_dir() / f"{path.stem}-{_fingerprint(path)}.ipynb"
    if cached.is_file():
        return nbformat.read(cached, as_version=4)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    nbformat.write(nb, tmp)
    tmp.replace(cached)
    return nb


# ---------------------------------------------------------------- tests of the scanner

def _notebook(*cells):
    """A small notebook: ("md", text) or ("code", source, printed output)."""
    nb = nbformat.v4.new_notebook()
    for kind, source, *printed in cells:
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(source))
        else:
            cell = nbformat.v4.new_code_cell(source)
            if printed:
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                                       text=printed[0])]
            nb.cells.append(cell)
    return nb


def test_scanner_catches_a_wrong_number():
    # notebook 06's old mistake: the prose said 55 % at lr 8.5, the output was 47.6 %
    nb = _notebook(("code", "LRS = (3.61, 8.5)\nrun(LRS)",
                    "lr 3.61: 91.2 %\nlr 8.5: 47.6 %\n"),
                   ("md", "At 8.5 the net still reaches 55 % (at 3.61: 91 %)."))
    assert [u.token for u in scan(nb)] == ["55 %"]


def test_scanner_rounding_ratios_and_order():
    nb = _notebook(("md", "Layer 3 is 3.5 times too wide."),  # before the output: no
                   ("code", "print(ratio)", "layer 2: 2.31, layer 3: 3.47\n"),
                   ("md", "2.3 times for layer 2, 3.7 times for layer 3, "
                          "3.5x at most, 0.3 percent; 1.2e-5 off."))
    assert [(u.cell, u.token) for u in scan(nb)] == [
        (0, "3.5 times"), (2, "3.7 times"), (2, "0.3 percent"), (2, "1.2e-5")]
    nb = _notebook(("code", "print(x)", "gap 0.0027 and 1.17e-05\n"),
                   ("md", "a gap of 0.27 % (about 0.3 percent) and 1.2e-5"))
    assert scan(nb) == []


def test_scanner_exemptions():
    nb = _notebook(
        ("code", "lr, p = 0.5, 0.2\ncheck_true('small', gap < 0.01)", "done\n"),
        ("md", "# 3.2 Training\nSec. 4.1, Sec. 3.4, 4.2.1 and Sections 2-3; "
               "Exercise 7.1; "
               "Definition 2.1; notebook 06; torch 2.13.0; arXiv:1502.03167; "
               "Proc. IEEE 86(11); [link](a.ipynb#s-1.5); `x = 1.5`; $$p = 0.15$$; "
               "lr 0.5 and dropout 20 %; a gap below 1 %; 28x28 images; a 500 × 100 "
               "array; 99 of 100 checkpoints; 50,000 steps in 2015"))
    assert scan(nb) == [], [str(u) for u in scan(nb)]
    nb = _notebook(("md", "inline math is scanned: $\\approx 13\\%$ and $0.52$"))
    assert [u.token for u in scan(nb)] == ["13\\%", "0.52"]
    nav = nbformat.v4.new_markdown_cell("0.123", metadata={"tags": ["navigation"]})
    nb.cells = [nav]
    assert scan(nb) == []


def test_scanner_reads_bare_exercise_numbers_as_names():
    # 3.8 and 4.1 are exercise numbers of the course, 5.9 is not
    nb = _notebook(("md", "your `batchnorm_backward_alt` (3.8); for 4.1-4.3, open the "
                          "module; but 5.9 and 3.8 times and 4.1 % are numbers"))
    assert [u.token for u in scan(nb)] == ["5.9", "3.8 times", "4.1 %"]


def test_cache_key_changes_with_the_notebook(tmp_path):
    a, b = tmp_path / "a.ipynb", tmp_path / "b.ipynb"
    nbformat.write(_notebook(("md", "one")), a)
    nbformat.write(_notebook(("md", "two")), b)
    assert _fingerprint(a) != _fingerprint(b)


# ---------------------------------------------------------------- the notebooks

@pytest.mark.notebook
def test_prose_numbers_are_backed(notebook_path):
    if notebook_path.parent.name == "zh":
        pytest.skip("the Chinese edition states the English numbers (same code, same "
                    "outputs): checked once, on the English notebook")
    missing = scan(executed(notebook_path), notebook_path.stem)
    if missing:
        pytest.fail(f"{notebook_path.name}: {len(missing)} number(s) in the prose that "
                    f"no output above and no code cell backs:\n"
                    + "\n".join(str(u) for u in missing), pytrace=False)


if __name__ == "__main__":
    status = 0
    for arg in sys.argv[1:]:
        found = scan(executed(Path(arg)), Path(arg).stem)
        print(f"{arg}: {len(found)} unbacked")
        for u in found:
            print("  ", u)
        status |= bool(found)
    sys.exit(status)
