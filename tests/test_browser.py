"""The course in a real browser: JupyterLab + headless Chromium, driven by Playwright.

Opens TARGET in JupyterLab, runs all cells from the Run menu and checks what a learner
sees: LaTeX typeset by MathJax, the slider widget and its picture rendered, no error,
no news popup; then moves the slider with the keyboard and by dragging, and checks that
the picture changes, the readout follows, keyboard focus is visible and a caption says
what to look for. A second test opens bn_helpers/batchnorm.py from the file browser.
The server runs on a temporary copy of the repository with its own Jupyter config,
settings and workspace folders, so nothing is written into the repository. Screenshots
go to $ARTIFACTS_DIR (default: a temp folder).

Needs Debian's Chromium:
    apt-get install -y --no-install-recommends chromium fonts-liberation
Without it the test skips, except under CI=true, where it fails.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TARGET = "notebooks/06_learning_rates.ipynb"  # the learning-rate explorer (issue #4)
CHROMIUM = Path("/usr/lib/chromium/chromium")  # not /usr/bin/chromium, a shell script
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-default-apps", "--disable-sync", "--no-first-run",
                 "--mute-audio"]
INSTALL_HINT = "apt-get install -y --no-install-recommends chromium fonts-liberation"
TIMEOUT_MS = 120_000  # run-all of one notebook: budget 60 s, doubled for a busy machine

WIDGET = "[data-test=widget]"  # the output area of the first slider, marked by the test
SLIDER = f"{WIDGET} .widget-slider"  # SelectionSlider: no .jupyter-widgets
HANDLE = f"{SLIDER} .noUi-handle[role=slider]"
READOUT = f"{SLIDER} .widget-readout"
TOGGLES = f"{WIDGET} .widget-toggle-buttons"
PICTURE = ".jupyter-widgets.widget-output .jp-RenderedImage img"
ERROR_TEXTS = ("Error displaying widget", "Loading widget...", "Traceback")

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def require_chromium():
    """Skip (or, under CI=true, fail) when the browser or Playwright is missing."""
    problem = None
    if not CHROMIUM.exists():
        problem = f"no Chromium at {CHROMIUM}; to enable this test: {INSTALL_HINT}"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "Python playwright missing: pip install -r requirements.txt"
    if problem and os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: the browser test must run, not skip. {problem}",
                    pytrace=False)
    if problem:
        pytest.skip(problem)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def artifacts(tmp_path) -> Path:
    root = os.environ.get("ARTIFACTS_DIR") or tmp_path / "artifacts"
    folder = Path(root) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def lab(tmp_path, artifacts):
    """JupyterLab on 127.0.0.1:<free port>, a random token, a copy of the repo."""
    require_chromium()
    copy = tmp_path / "repo"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(
        ".venv", ".git", "__pycache__", "*.egg-info", ".pytest_cache", "artifacts"))
    dirs = {name: tmp_path / "jupyter" / name
            for name in ("config", "data", "runtime", "settings", "workspaces", "app")}
    for folder in dirs.values():
        folder.mkdir(parents=True)
    # The JupyterLab defaults Binder installs (binder/postBuild): no news popup.
    shutil.copy(REPO / "binder" / "overrides.json", dirs["app"] / "overrides.json")
    env = dict(os.environ,
               JUPYTER_CONFIG_DIR=str(dirs["config"]),
               JUPYTER_DATA_DIR=str(dirs["data"]),
               JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
               JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
               JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]))
    port, token = free_port(), secrets.token_hex(16)
    log_path = artifacts / "jupyterlab.log"
    log = open(log_path, "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
         f"--port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={copy}",
         f"--LabApp.app_settings_dir={dirs['app']}", "--allow-root"],
        cwd=copy, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, f"JupyterLab exited; see {log_path}"
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}",
                                            timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "JupyterLab did not start in 60 s"
                time.sleep(0.2)
        yield {"base": base, "token": token, "copy": copy}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


# ---------------------------------------------------------------- page helpers

def wait_idle(page, timeout_ms: int = TIMEOUT_MS) -> None:
    """Until the kernel exists and is idle (the toolbar says idle before it exists)."""
    page.wait_for_function(
        """() => [...document.querySelectorAll(
                '#jp-main-statusbar .jp-StatusBar-TextItem')]
            .map(e => e.innerText.trim())
            .some(t => t.endsWith('| Idle') && !t.startsWith('No Kernel'))""",
        timeout=timeout_ms)


def wait_run_all_done(page, timeout_ms: int = TIMEOUT_MS) -> None:
    """Until every code cell shows an execution count, or an error stopped the run."""
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll(
                '.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]
                .map(p => p.textContent);
            if (prompts.some(p => p.includes('*'))) return false;
            const outputs = [...document.querySelectorAll(
                '.jp-Notebook .jp-OutputArea')];
            return outputs.some(o => o.textContent.includes('Traceback'))
                || (prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p)));
        }""", timeout=timeout_ms)


def offline_page(pw):
    """(browser, page): headless Chromium, every request not to 127.0.0.1 refused
    (offline, like a locked-down classroom: everything must come from the server)."""
    browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.route(re.compile(r"^(?!http://127\.0\.0\.1[:/]).*"),
                  lambda route: route.abort())
    return browser, context.new_page()


def menu(page, name: str, command: str) -> None:
    """Click Lab's menu `name`, then its item for `command` (e.g. runmenu:run-all)."""
    page.locator(".lm-MenuBar-itemLabel", has_text=name).first.click()
    page.locator(f"li[data-command='{command}']").first.click()


def open_and_run_all(page, lab, path: str, timeout_ms: int = TIMEOUT_MS) -> None:
    """Open the notebook at `path` (relative to Lab's root), Run All, wait until done."""
    page.goto(f"{lab['base']}/lab/tree/{path}?token={lab['token']}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=TIMEOUT_MS)
    wait_idle(page)
    menu(page, "Run", "runmenu:run-all")
    wait_run_all_done(page, timeout_ms=timeout_ms)
    wait_idle(page)


def picture_src(page) -> str:
    return page.locator(f"{WIDGET} {PICTURE}").first.get_attribute("src") or ""


def readout(page) -> str:
    return page.locator(READOUT).first.inner_text().strip()


def wait_new_picture(page, old_src: str) -> str:
    """After a widget change: the image changes, the kernel idles, the image settles."""
    page.wait_for_function(
        "([sel, old]) => { const i = document.querySelector(sel);"
        " return i && i.src && i.src !== old; }",
        arg=[f"{WIDGET} {PICTURE}", old_src], timeout=30_000)
    wait_idle(page)
    src = picture_src(page)
    while True:
        page.wait_for_timeout(500)
        now = picture_src(page)
        if now == src:
            return src
        src = now


def check_no_errors(page, texts=ERROR_TEXTS) -> None:
    """No error text in any cell output, no widget shown as its text repr, no popup."""
    text = "\n".join(page.locator(".jp-Notebook .jp-OutputArea").all_text_contents())
    for bad in texts:
        assert bad not in text, f"the notebook shows {bad!r}"
    as_text = re.search(r"\b(?:VBox|HBox|IntSlider|FloatSlider|interactive)\(", text)
    assert not as_text, "a widget shows as text: is jupyterlab_widgets enabled?"
    assert page.locator(".jp-Notebook mjx-merror").count() == 0, "a MathJax error"
    assert "Jupyter news" not in page.locator("body").inner_text(), "news popup shown"


def slider_number(text: str) -> float:
    return float(text.replace(",", ""))


def expected_readout(position: float) -> str:
    """The readout of TARGET's SelectionSlider at handle position (option index)."""
    from bn_helpers.lr_study import LR_GRID, lr_label

    return lr_label(LR_GRID[round(position)])


def position(handle) -> float:
    """Where the handle is: the option index of a SelectionSlider."""
    return slider_number(handle.get_attribute("aria-valuenow"))


# ---------------------------------------------------------------- the test

def test_widget_notebook_in_jupyterlab(lab, artifacts):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    assert (REPO / TARGET).exists(), f"{TARGET} is missing"
    started = time.monotonic()
    with sync_playwright() as pw:
        browser, page = offline_page(pw)
        console = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        try:
            open_and_run_all(page, lab, TARGET)
            page.screenshot(path=artifacts / "01-run-all.png")
            check_no_errors(page, ("Traceback",))
            try:  # widgets render just after the kernel idles
                page.locator(PICTURE).first.wait_for(timeout=30_000)
            except PlaywrightTimeout:
                page.screenshot(path=artifacts / "01-run-all.png")
                check_no_errors(page)
                pytest.fail("no plot image in a widget Output after Run All",
                            pytrace=False)
            check_no_errors(page)

            # LaTeX: typeset by MathJax, no source left showing, no unknown macro.
            math = page.locator(".jp-Notebook mjx-container")
            assert math.count() > 0, "no math typeset"
            text = "\n".join(page.locator(".jp-RenderedMarkdown").all_text_contents())
            raw = re.search(r"\$\$|\$\\[a-zA-Z]", text)
            assert not raw, f"raw LaTeX visible: {text[raw.start():raw.start() + 80]!r}"
            unknown = [t for t in math.all_text_contents() if "\\" in t]
            assert not unknown, f"MathJax shows an undefined macro: {unknown[0][:80]!r}"

            # The first slider's output area: the slider, its controls, its picture.
            widget_area = page.locator(".widget-slider").first.locator(
                "xpath=ancestor::div[contains(@class,'jp-OutputArea-output')][1]")
            widget_area.evaluate("e => e.setAttribute('data-test', 'widget')")
            widget_area.scroll_into_view_if_needed()
            widget_area.screenshot(path=artifacts / "02-widget.png")
            handle = page.locator(HANDLE).first
            assert picture_src(page).startswith("data:image/png"), "no plot image"

            # Keyboard: one step right (or left at the right end) moves by one option;
            # the readout shows that option's learning rate.
            before_pos, before_src = position(handle), picture_src(page)
            assert readout(page) == expected_readout(before_pos), "readout != slider"
            before_value = slider_number(readout(page))
            at_max = (handle.get_attribute("aria-valuenow")
                      == handle.get_attribute("aria-valuemax"))
            handle.focus()
            page.keyboard.press("ArrowLeft" if at_max else "ArrowRight")
            after_src = wait_new_picture(page, before_src)
            # keyboard focus is visible, and a caption says what to look for
            outline = handle.evaluate("e => { const s = getComputedStyle(e);"
                                      " return [s.outlineStyle, s.outlineWidth]; }")
            assert outline[0] != "none" and float(outline[1][:-2]) >= 2, (
                f"the focused slider handle has no visible outline: {outline}")
            assert "Look for:" in widget_area.inner_text(), "no caption"
            after_pos = position(handle)
            assert after_pos - before_pos == (-1 if at_max else 1), (
                f"handle moved from option {before_pos} to {after_pos}")
            assert readout(page) == expected_readout(after_pos), "readout != slider"
            after_value = slider_number(readout(page))
            moved = after_value - before_value
            assert moved < 0 if at_max else moved > 0, f"readout moved by {moved}"
            widget_area.screenshot(path=artifacts / "03-after-keyboard.png")

            # Drag: the handle to a third of the track (two thirds if left of half).
            lo = slider_number(handle.get_attribute("aria-valuemin"))
            hi = slider_number(handle.get_attribute("aria-valuemax"))
            goal = 1 / 3 if (after_pos - lo) / (hi - lo) > 0.5 else 2 / 3
            track = page.locator(f"{SLIDER} .noUi-target").first.bounding_box()
            box = handle.bounding_box()
            y = box["y"] + box["height"] / 2
            page.mouse.move(box["x"] + box["width"] / 2, y)
            page.mouse.down()
            page.mouse.move(track["x"] + goal * track["width"], y, steps=12)
            page.mouse.up()
            dragged_src = wait_new_picture(page, after_src)
            dragged_pos = position(handle)
            dragged_value = readout(page)
            assert dragged_pos != after_pos and dragged_src != after_src
            assert dragged_value == expected_readout(dragged_pos), "readout != slider"
            # options snap: at most half an option (1/14 of 8 options) from the goal
            assert abs((dragged_pos - lo) / (hi - lo) - goal) < 0.1, (
                f"dragged to {goal:.2f} of the track, the handle is at option "
                f"{dragged_pos} in [{lo}, {hi}]")
            widget_area.screenshot(path=artifacts / "04-after-drag.png")

            # A selector beside the slider (01: the layer), if there is one.
            choices = page.locator(f"{TOGGLES} button:not(.mod-active)")
            if choices.count():
                choices.first.click()
                wait_new_picture(page, dragged_src)
                assert readout(page) == dragged_value, "the slider moved"
                widget_area.screenshot(path=artifacts / "05-after-toggle.png")
            check_no_errors(page)
        except Exception:
            page.screenshot(path=artifacts / "failure.png", full_page=True)
            raise
        finally:
            (artifacts / "console.log").write_text("\n".join(console))
            browser.close()
    print(f"browser test: {time.monotonic() - started:.1f} s; "
          f"screenshots in {artifacts}")


def test_package_opens_from_the_file_browser(lab, artifacts):
    """A learner edits bn_helpers/batchnorm.py (notebooks 02-05): from Lab's file
    browser, rooted at the repository as `make lab` and Binder root it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM),
                                     args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{lab['base']}/lab?token={lab['token']}")
            listing = page.locator(".jp-DirListing-content")
            listing.wait_for(timeout=TIMEOUT_MS)
            for name in ("bn_helpers", "batchnorm.py"):
                item = page.locator(".jp-DirListing-item",
                                    has=page.locator(".jp-DirListing-itemText",
                                                     has_text=re.compile(
                                                         f"^{re.escape(name)}$")))
                item.first.wait_for(timeout=30_000)
                item.first.dblclick()
            editor = page.locator(".jp-FileEditor .cm-content")
            editor.first.wait_for(timeout=30_000)
            # the editor draws the lines in view: the file's first line must be there
            first = (REPO / "bn_helpers" / "batchnorm.py").read_text().splitlines()[0]
            page.wait_for_function(
                "t => [...document.querySelectorAll('.jp-FileEditor .cm-content')]"
                ".some(e => e.textContent.includes(t))", arg=first.strip(),
                timeout=30_000)
            tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")
            assert "batchnorm.py" in tab.first.inner_text()
            page.screenshot(path=artifacts / "10-batchnorm-py.png")
        except Exception:
            page.screenshot(path=artifacts / "failure-file-browser.png")
            raise
        finally:
            browser.close()


def test_notebook_opens_without_unsaved_mark(lab, artifacts):
    """Lab fills in the kernel's metadata on open; tools/clean_notebooks.py stores the
    same, so a notebook is not marked unsaved before the learner changes anything."""
    from playwright.sync_api import sync_playwright

    target = "notebooks/02_bn_forward.ipynb"
    subprocess.run([sys.executable, "tools/clean_notebooks.py", target],
                   cwd=lab["copy"], check=True, capture_output=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM),
                                     args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{lab['base']}/lab/tree/{target}?token={lab['token']}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=TIMEOUT_MS)
            wait_idle(page)
            page.wait_for_timeout(2000)  # Lab writes the kernel's metadata after idle
            tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")
            assert "02_bn_forward" in tab.first.inner_text()
            classes = tab.first.get_attribute("class") or ""
            page.screenshot(path=artifacts / "11-opened-clean.png")
            assert "jp-mod-dirty" not in classes, (
                "the notebook is marked unsaved right after opening")
        finally:
            browser.close()
