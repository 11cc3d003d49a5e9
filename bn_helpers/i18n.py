"""The language of what the course shows: figure text, check lines, widget labels.

English is the default. The Chinese notebooks (``notebooks/zh/``) start with::

    from bn_helpers import i18n
    i18n.set_language("zh")

after which ``t(text)`` returns the Chinese of an English string listed in
``bn_helpers/locale/zh/*.json`` (one file per notebook, and common.json) (unlisted strings come back unchanged), matplotlib
translates every text of a figure as it draws it (titles, labels, legends,
annotations), and figures use a CJK font (Debian's ``fonts-noto-cjk``, which ``.ci/run``
and ``binder/apt.txt`` install). Nothing happens on import.

A catalogue key may hold placeholders ``{0}``, ``{1}``, ...: ``"BN, lr {0}"`` with
value ``"BN，学习率 {0}"`` translates ``"BN, lr 0.5"`` to ``"BN，学习率 0.5"``.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from functools import lru_cache
from pathlib import Path

__all__ = ["LANGUAGES", "CJK_FONT", "set_language", "get_language", "t",
           "placeholders"]

LANGUAGES = ("en", "zh")
CJK_FONT = "Noto Sans CJK SC"  # Debian: fonts-noto-cjk; Binder: binder/apt.txt
_LOCALE_DIR = Path(__file__).resolve().parent / "locale"
_FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
_state = {"lang": "en", "patched": False}
# tools/zh.py --figure-texts sets this to collect figure texts with no translation
_MISSING_LOG = os.environ.get("BN_I18N_MISSING_LOG")
_PLACEHOLDER = re.compile(r"\\\{(\d+)\\\}")  # "{0}" after re.escape


def get_language() -> str:
    """The current language code: "en" or "zh"."""
    return _state["lang"]


def set_language(lang: str) -> None:
    """Show figures, check lines and widget labels in `lang` ("en" or "zh")."""
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {LANGUAGES}, got {lang!r}")
    _state["lang"] = lang
    if lang == "zh":
        _use_cjk_font()
        _translate_when_drawn()
    elif "font.family" in _state:  # back to the fonts English used
        import matplotlib as mpl

        mpl.rcParams["font.family"] = _state.pop("font.family")


@lru_cache(maxsize=None)
def _catalogue(lang: str) -> tuple[dict, list]:
    """(exact strings, [(compiled pattern, template)]) of locale/<lang>/*.json."""
    entries = {}
    for path in sorted((_LOCALE_DIR / lang).glob("*.json")):
        entries |= json.loads(path.read_text(encoding="utf-8"))["strings"]
    exact, patterns = {}, []
    for english, translated in entries.items():
        if placeholders(english):
            parts = re.split(r"(\$[^$]*\$)", english)  # odd parts: math, literal
            regex = "".join(re.escape(p) if i % 2 else
                            _PLACEHOLDER.sub(r"(?P<p\1>.+?)", re.escape(p))
                            for i, p in enumerate(parts))
            patterns.append((re.compile(f"^{regex}$", re.S), translated))
        else:
            exact[english] = translated
    return exact, patterns


def placeholders(text: str) -> list[str]:
    """The placeholders {0}, {1}, ... of a catalogue string, outside $math$ (where
    braces are LaTeX: \\frac{1}{m})."""
    outside = "".join(re.split(r"\$[^$]*\$", text))
    return sorted(re.findall(r"\{\d+\}", outside))


def t(text: str) -> str:
    """`text` in the current language (unchanged in English or when not listed)."""
    if _state["lang"] == "en" or not isinstance(text, str) or not text:
        return text
    exact, patterns = _catalogue(_state["lang"])
    if text in exact:
        return exact[text]
    for pattern, template in patterns:
        found = pattern.match(text)
        if found:
            values = {int(k[1:]): v for k, v in found.groupdict().items()}
            parts = re.split(r"(\$[^$]*\$)", template)
            return "".join(p if i % 2 else re.sub(
                r"\{(\d+)\}", lambda m: t(values[int(m.group(1))]), p)
                for i, p in enumerate(parts))
    # multi-line texts (legends with a title, wrapped titles): line by line
    if "\n" in text:
        return "\n".join(t(line) for line in text.split("\n"))
    return text


def _use_cjk_font() -> None:
    import matplotlib as mpl
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    if CJK_FONT not in names:  # installed after matplotlib cached its font list
        for folder in _FONT_DIRS:
            for path in folder.glob("**/NotoSansCJK*"):
                font_manager.fontManager.addfont(str(path))
        names = {f.name for f in font_manager.fontManager.ttflist}
    if CJK_FONT not in names:
        warnings.warn(f"the font {CJK_FONT!r} is not installed, so Chinese text in "
                      f"figures shows as boxes: apt-get install fonts-noto-cjk",
                      stacklevel=3)
        return
    # An explicit list, not "sans-serif" (which resolves to one font). The CJK font
    # comes first: a label that mixes text and $math$ is laid out by mathtext, which
    # takes its text font from the first family and has no per-glyph fallback.
    _state.setdefault("font.family", mpl.rcParams["font.family"])
    mpl.rcParams["font.family"] = [CJK_FONT, "DejaVu Sans"]


def _translate_when_drawn() -> None:
    """Translate each matplotlib Text as it is drawn (once; a no-op in English)."""
    if _state["patched"]:
        return
    from matplotlib.text import Text

    draw = Text.draw

    def draw_translated(self, renderer):
        text = self.get_text()
        translated = t(text)
        if translated != text:
            self.set_text(translated)
        elif _state["lang"] != "en" and _MISSING_LOG and re.search("[A-Za-z]{3}", text):
            with open(_MISSING_LOG, "a", encoding="utf-8") as log:
                log.write(json.dumps(text, ensure_ascii=False) + "\n")
        return draw(self, renderer)

    Text.draw = draw_translated
    _state["patched"] = True
