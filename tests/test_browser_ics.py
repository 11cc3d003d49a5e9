"""01's dashboard explorer in JupyterLab + Chromium: key press and drag to new picture.

Uses the JupyterLab fixture and page helpers of tests/test_browser.py. A small notebook
(tiny nets, a few steps, written into the server's copy of the repository) builds
`widgets.ics_dashboard`; the test presses ArrowRight on the step slider and measures,
in the page, the time from the keydown event to the moment a different picture is
visible (the Stack switches in the browser, no kernel round trip), then drags the
slider and clicks a layer button. Budget: 200 ms per change. Then it saves the
notebook with its outputs, shuts the kernel down and opens the notebook again: the
explorer is drawn from the widget state saved with it, with no widget error.
"""

from __future__ import annotations

import nbformat
import pytest

from test_browser import (TIMEOUT_MS, artifacts, check_no_errors, lab,  # noqa: F401
                          menu, offline_page, open_and_run_all, wait_idle)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

BUDGET_MS = 200.0
SOURCE = '''\
from bn_helpers import ics_dashboard, models, plots, widgets
from bn_helpers.data import load_mnist
plots.use_style()
x, y = load_mnist("train", n=600, seed=0)
xt, yt = load_mnist("test", n=200, seed=1)
pairs = {}
for init in (0.1, 1.0):
    pairs[str(init)] = {
        label: ics_dashboard.record(
            models.build_mlp((784, 30, 30, 30, 10), batchnorm=label == "BN",
                             init_std=init, seed=0),
            x, y, eval_x=xt, eval_y=yt, probe_x=xt[:100], probe_y=yt[:100], lr=0.5,
            steps=20, checkpoints=ics_dashboard.log_checkpoints(20, 8), seed=0,
            init_std=init, progress=False)
        for label in ("no BN", "BN")}
widgets.ics_dashboard(pairs)
'''
VISIBLE = """() => { const v = [...document.querySelectorAll('img.widget-image')]
    .filter(i => i.offsetParent !== null && i.getBoundingClientRect().width > 0);
    return v.length ? v[0].src : ''; }"""
# Arm a clock: it starts at the next keydown/pointerdown and stops at the first
# animation frame that shows a different visible picture (window.__icsMs, in ms).
TIMER = """(kind) => {
    const visible = () => { const v = [...document.querySelectorAll('img.widget-image')]
        .filter(i => i.offsetParent !== null && i.getBoundingClientRect().width > 0);
        return v.length ? v[0].src : ''; };
    const before = visible();
    window.__icsMs = undefined;
    document.addEventListener(kind, () => {
        const t0 = performance.now();
        const poll = () => {
            if (visible() !== before) window.__icsMs = performance.now() - t0;
            else requestAnimationFrame(poll); };
        requestAnimationFrame(poll);
    }, {capture: true, once: true});
}"""


def _elapsed(page) -> float:
    page.wait_for_function("() => window.__icsMs !== undefined", timeout=10_000)
    return page.evaluate("() => window.__icsMs")


def _write_notebook(folder) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SOURCE)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = folder / "notebooks" / "_ics_dashboard_probe.ipynb"
    nbformat.write(nb, path)
    return "notebooks/_ics_dashboard_probe.ipynb"


def test_ics_dashboard_in_jupyterlab(lab, artifacts):
    from playwright.sync_api import sync_playwright

    target = _write_notebook(lab["copy"])
    with sync_playwright() as pw:
        browser, page = offline_page(pw)
        try:
            open_and_run_all(page, lab, target)
            page.wait_for_function(f"({VISIBLE})() !== ''", timeout=60_000)
            check_no_errors(page)
            slider = page.locator(".widget-slider").first
            handle = slider.locator(".noUi-handle[role=slider]").first
            readout = slider.locator(".widget-readout").first
            assert float(handle.get_attribute("aria-valuenow")) == 0, "not at step 0"
            assert readout.inner_text().strip() == "0"
            times = {}

            # keyboard: ArrowRight from the first step
            first = page.evaluate(VISIBLE)
            page.evaluate(f"({TIMER})('keydown')")
            handle.focus()
            page.keyboard.press("ArrowRight")
            times["key"] = _elapsed(page)
            assert page.evaluate(VISIBLE) != first
            assert readout.inner_text().strip() == "1"
            page.screenshot(path=artifacts / "ics-after-key.png")

            # drag right, to two thirds of the track
            before = page.evaluate(VISIBLE)
            track = slider.locator(".noUi-target").first.bounding_box()
            box = handle.bounding_box()
            y = box["y"] + box["height"] / 2
            page.mouse.move(box["x"] + box["width"] / 2, y)
            page.mouse.down()
            page.mouse.move(track["x"] + 2 / 3 * track["width"], y, steps=8)
            page.mouse.up()
            page.wait_for_timeout(300)
            assert page.evaluate(VISIBLE) != before
            assert int(readout.inner_text().strip()) > 1

            # a layer button, in line with the slider
            before = page.evaluate(VISIBLE)
            buttons = page.locator(".widget-toggle-buttons").first
            assert abs(buttons.bounding_box()["y"] - slider.bounding_box()["y"]) < 20
            page.evaluate(f"({TIMER})('pointerdown')")
            buttons.locator("button:not(.mod-active)").first.click()
            times["layer"] = _elapsed(page)
            assert page.evaluate(VISIBLE) != before
            page.screenshot(path=artifacts / "ics-after-layer.png")
            check_no_errors(page)

            # saved with its outputs, kernel shut down, notebook opened again: the
            # widget state saved with the notebook (saveState) draws the explorer
            # again, with no "Error displaying widget" or "model not found"
            menu(page, "File", "docmanager:save")
            page.wait_for_function(
                "() => !document.querySelector('.jp-mod-current.jp-mod-dirty')",
                timeout=30_000)
            menu(page, "Kernel", "kernelmenu:shutdown")
            accept = page.locator(".jp-Dialog .jp-mod-accept")
            if accept.count():
                accept.first.click()
            page.wait_for_timeout(1500)
            page.reload()
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=TIMEOUT_MS)
            wait_idle(page)
            page.wait_for_function(f"({VISIBLE})() !== ''", timeout=60_000)
            page.screenshot(path=artifacts / "ics-reopened.png")
            check_no_errors(page)
            shown = page.locator(".jp-Notebook .jp-OutputArea").all_text_contents()
            assert not any("model not found" in t for t in shown)
        except Exception:
            page.screenshot(path=artifacts / "ics-failure.png", full_page=True)
            raise
        finally:
            browser.close()
    print("key press / pointer to new picture (ms):",
          ", ".join(f"{k} {v:.0f}" for k, v in times.items()))
    for kind, ms in times.items():
        assert ms <= BUDGET_MS, f"{kind}: {ms:.0f} ms to a new picture"
