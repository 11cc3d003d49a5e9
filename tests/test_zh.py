"""The Chinese edition: complete and fresh translations, generated notebooks in sync
with `make zh`, and Chinese text in figures with no missing glyph.

Oracles: the sha256 of each English cell (a translation records the hash of the English
it translates); tools/zh.py's build compared with the files on disk; matplotlib's own
"Glyph ... missing" warning.
"""

from __future__ import annotations

import importlib.util
import json
import re
import warnings

import matplotlib.pyplot as plt
import nbformat
import pytest

from pathlib import Path

from bn_helpers import i18n

REPO = Path(__file__).resolve().parent.parent

_spec = importlib.util.spec_from_file_location("zh_tool", REPO / "tools" / "zh.py")
zh_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(zh_tool)

CJK = re.compile(r"[\u4e00-\u9fff]")
EN_NOTEBOOKS = zh_tool.translated_notebooks()  # those with a catalogue


@pytest.fixture
def chinese():
    i18n.set_language("zh")
    yield
    i18n.set_language("en")


@pytest.mark.parametrize("en_path", EN_NOTEBOOKS, ids=[p.stem for p in EN_NOTEBOOKS])
def test_every_markdown_cell_has_a_fresh_translation(en_path):
    assert zh_tool.problems(en_path) == []


@pytest.mark.parametrize("en_path", EN_NOTEBOOKS, ids=[p.stem for p in EN_NOTEBOOKS])
def test_generated_notebook_is_what_make_zh_writes(en_path):
    out = zh_tool.ZH_DIR / en_path.name
    assert out.exists(), f"{out} is missing: run make zh"
    assert out.read_text(encoding="utf-8") == zh_tool._text(zh_tool.build(en_path)), (
        f"{out.name} differs from what tools/zh.py writes: run make zh")


@pytest.mark.parametrize("en_path", EN_NOTEBOOKS, ids=[p.stem for p in EN_NOTEBOOKS])
def test_translations_are_chinese_and_keep_code_and_math(en_path):
    """Every prose cell has Chinese; inline code and display math survive unchanged."""
    en = nbformat.read(en_path, as_version=4)
    cat = zh_tool.load_catalog(en_path.stem)
    for cell in en.cells:
        if cell.cell_type != "markdown":
            continue
        zh = cat[cell.id]["zh"]
        words = re.findall(r"\b[A-Za-z]{4,}\b", re.sub(r"`[^`]*`|\$[^$]*\$", "",
                                                        cell.source))
        if len(words) >= 3:
            assert CJK.search(zh), f"{en_path.name} {cell.id}: no Chinese in it"
        for code in set(re.findall(r"`[^`\n]+`", cell.source)):
            assert code in zh, f"{en_path.name} {cell.id}: {code} lost"
        for math in set(re.findall(r"\$\$.+?\$\$", cell.source, re.S)):
            assert math in zh, f"{en_path.name} {cell.id}: display math changed"


def test_a_stale_translation_is_reported(tmp_path, monkeypatch):
    """Translate a cell, then change its English: it must be reported stale."""
    en_path = EN_NOTEBOOKS[0]
    nb = nbformat.read(en_path, as_version=4)
    md = next(c for c in nb.cells if c.cell_type == "markdown")
    entry = {"en_sha256": zh_tool.en_hash(md.source), "zh": "中文"}
    (tmp_path / f"{en_path.stem}.json").write_text(
        json.dumps({"cells": {md.id: entry}}), encoding="utf-8")
    monkeypatch.setattr(zh_tool, "CATALOG_DIR", tmp_path)
    copy = tmp_path / en_path.name
    nbformat.write(nb, copy)
    assert not any(md.id in p for p in zh_tool.problems(copy))
    md.source += "\nOne more sentence."
    nbformat.write(nb, copy)
    assert any(f"cell {md.id} is stale" in p for p in zh_tool.problems(copy))


def test_chinese_figure_has_every_glyph(chinese, caplog):
    """matplotlib warns of a missing glyph (text) or logs it (text with $math$)."""
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([0, 1], [0, 1], label=i18n.t("no BN"))
    ax.set_title("批归一化：小批量均值与方差")
    ax.set_xlabel(i18n.t("training step"))
    ax.set_ylabel("测试准确率 (%)")
    ax.text(0.1, 0.5, r"缩放与平移 $\gamma \hat{x} + \beta$")
    ax.legend()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.canvas.draw()
    plt.close(fig)
    missing = [str(w.message) for w in caught if "missing from" in str(w.message)
               or "Glyph" in str(w.message)]
    missing += [r.getMessage() for r in caplog.records if "glyph" in r.getMessage()]
    assert not missing, missing[:3]


def test_figure_text_is_translated_when_drawn(chinese):
    fig, ax = plt.subplots()
    ax.set_xlabel("training step")
    ax.set_title("layer 3")
    fig.canvas.draw()
    plt.close(fig)
    assert ax.get_xlabel() == "训练步数" and ax.get_title() == "第 3 层"


def test_braces_inside_math_are_not_placeholders():
    assert i18n.placeholders(r"mean $\frac{1}{m}\sum x_i$ of layer {0}") == ["{0}"]


def test_english_is_untouched_and_bad_language_refused():
    assert i18n.get_language() == "en"
    assert i18n.t("training step") == "training step"
    with pytest.raises(ValueError, match="lang must be one of"):
        i18n.set_language("cn")


def test_locale_values_are_chinese():
    table = {}
    for path in sorted((REPO / "bn_helpers" / "locale" / "zh").glob("*.json")):
        table |= json.loads(path.read_text(encoding="utf-8"))["strings"]
    latin_only = [k for k, v in table.items() if not CJK.search(v) and v != k]
    assert not latin_only, latin_only
    for key, value in table.items():  # same placeholders, in any order
        assert i18n.placeholders(key) == i18n.placeholders(value), key


def test_every_course_notebook_has_a_chinese_edition():
    missing = [en.stem for en in zh_tool.english_notebooks()
               if en not in zh_tool.translated_notebooks()]
    assert not missing, f"no catalogue in notebooks/zh/catalog/ for {missing}"
