"""Figures for the course. ``use_style()`` applies the bundled style; plotting functions
take data and return the matplotlib Figure, so notebooks stay one call per picture.

Colour convention across the course: no-BN in BLUE, with-BN in VERMILLION (colour-blind
safe Okabe-Ito palette).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

__all__ = ["STYLE", "NO_BN_COLOR", "BN_COLOR", "use_style"]

STYLE = Path(__file__).with_name("course.mplstyle")
NO_BN_COLOR = "#0072B2"
BN_COLOR = "#D55E00"


def use_style() -> None:
    """Apply the course figure style (call once in a notebook's setup cell)."""
    plt.style.use(STYLE)
