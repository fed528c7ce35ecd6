"""The widgets render and respond in a real browser: JupyterLab + Debian's chromium, driven by
playwright (papermill runs only prove that the cells execute).

Each test starts a JupyterLab server on a free port over a copy of a notebook with the `quick`
profile injected (papermill ``prepare_only``), runs all cells in the browser, interacts with the
widgets and checks what a person would see: no error or warning boxes, the widgets present, and
an output that changes when a widget is used. Screenshots go to ``results/browser/`` (git
ignores ``results/``). Marked ``browser``; skipped with the reason when chromium or playwright
is missing, except under CI (``CI=true``), where ``make test`` installs both and a skip would
hide a missing install step.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "results" / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TIMEOUT_MS = 240_000  # running a notebook's cells on a busy 2-core machine

pytestmark = pytest.mark.browser


def _need_browser() -> None:
    missing = []
    if CHROMIUM is None:
        missing.append("chromium (apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install -r requirements.txt)")
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests need {', '.join(missing)}: scripts/setup.sh installs them")
        pytest.skip(f"needs {', '.join(missing)}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server over ``tmp_path`` (no token, app exposed as ``window.jupyterapp``)."""
    _need_browser()
    port, root = _free_port(), tmp_path / "lab"
    root.mkdir()
    env = {**os.environ, "EIPLAB_CACHE": str(tmp_path / "cache"), "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
         "--LabApp.expose_app_in_browser=True", f"--ServerApp.root_dir={root}", "--allow-root",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / "lab.log").open("w"))
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail(f"JupyterLab did not start: {(tmp_path / 'lab.log').read_text()[-2000:]}")
    yield url, root
    server.terminate()
    server.wait(timeout=30)


def _prepare(name: str, folder: Path, **parameters) -> str:
    """A copy of notebook ``name`` with ``parameters`` injected (not executed); its file name."""
    import papermill as pm

    target = folder / f"{name}.ipynb"
    pm.execute_notebook(str(ROOT / "notebooks" / f"{name}.ipynb"), str(target), parameters=parameters,
                        prepare_only=True, kernel_name="eiplab", progress_bar=False)
    return target.name


def _run_all(page, url: str, notebook: str) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(f"{url}/lab/tree/{notebook}")
    page.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook')", timeout=TIMEOUT_MS)
    accept = page.locator(".jp-Dialog button.jp-mod-accept")  # "Select Kernel": the eiplab kernel is preselected
    try:
        accept.wait_for(timeout=15_000)
        accept.click()
    except PlaywrightTimeout:
        pass  # the kernel started without asking
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=TIMEOUT_MS)
    # not awaited: the command's promise can outlive the cells (evaluate has no timeout)
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    # every code cell has run when no prompt shows "[*]" and the last one has a number
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
            return prompts.length > 0 && !prompts.some(t => t.includes('*')) && /\\[\\d+\\]/.test(prompts.at(-1));
        }""", timeout=TIMEOUT_MS)


def _dismiss_news(page) -> None:
    """Close JupyterLab's "get notified about Jupyter news?" toast (it covers the screenshot)."""
    no = page.get_by_role("button", name="No", exact=True)
    if no.count():
        no.first.click()


def _problems(page) -> list[str]:
    """Texts of error outputs and of stderr boxes (warnings shown in red) in the notebook."""
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'], "
                          ".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']")
    return [t for t in errors.all_inner_texts() if t.strip()]


def test_config_picker_renders_and_follows_the_dropdown(lab):
    from playwright.sync_api import sync_playwright

    url, folder = lab
    notebook = _prepare("01_datasets", folder, profile="quick", out_dir=None)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            _check_config_picker(page, url, notebook)
        except Exception:
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "01_config_picker-FAILED.png"), full_page=True)
            raise
        finally:
            browser.close()


def _check_config_picker(page, url: str, notebook: str) -> None:
    from playwright.sync_api import expect

    _run_all(page, url, notebook)
    picker = page.locator(".widget-dropdown select")
    expect(picker.first).to_be_visible(timeout=TIMEOUT_MS)
    assert picker.count() >= 2, "phase filter and config dropdowns"
    info = page.locator(".widget-html-content").filter(has_text="atoms)").last
    first_text = info.inner_text()
    config = picker.nth(1)
    second = config.locator("option").nth(1).get_attribute("value")
    config.select_option(index=1)
    expect(info).to_contain_text(second, timeout=60_000)
    assert info.inner_text() != first_text
    assert page.locator(".jp-OutputArea-output canvas").count() >= 1, "nglview draws the config"
    plots = page.locator(".js-plotly-plot")
    assert plots.count() >= 4, "the four dataset figures render"
    assert not _problems(page), _problems(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    _dismiss_news(page)
    page.locator(".jp-OutputArea-output canvas").last.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "01_config_picker.png"))


def test_eip_panel_follows_the_alignment_switch_and_the_eip_choice(lab):
    from playwright.sync_api import expect, sync_playwright

    url, folder = lab
    notebook = _prepare("02_eip_benchmark", folder, profile="quick", out_dir=None)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            _run_all(page, url, notebook)
            pick = page.locator(".widget-select-multiple select").last
            expect(pick).to_be_visible(timeout=TIMEOUT_MS)
            panel = page.locator(".widget-vbox").filter(has=pick).last
            table = panel.locator("table").last
            aligned = table.inner_text()
            panel.locator(".widget-toggle-buttons button", has_text="none").click()
            expect(table).not_to_have_text(aligned, timeout=60_000)  # raw totals: other MAEs
            names = pick.locator("option").all_inner_texts()
            pick.select_option(label=names[0])
            expect(table.locator("tbody tr")).to_have_count(1, timeout=60_000)
            assert names[0] in table.inner_text() and "__MO_" not in table.inner_text(), "short EIP names"
            assert panel.locator(".js-plotly-plot").count() == 1, "the parity plot renders"
            assert not _problems(page), _problems(page)
            SHOTS.mkdir(parents=True, exist_ok=True)
            _dismiss_news(page)
            panel.scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / "02_eip_panel.png"))
        except Exception:
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "02_eip_panel-FAILED.png"), full_page=True)
            raise
        finally:
            browser.close()


def test_learning_curves_and_la_explorer_respond(lab):
    from playwright.sync_api import expect, sync_playwright

    url, folder = lab
    notebook = _prepare("03_strategies", folder, profile="quick", out_dir=None, models=["soapnet"],
                        strategies=["baseline", "la"])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            _run_all(page, url, notebook)
            # learning-curve panel: the plot's title follows the strategy picker
            curves = page.locator(".widget-vbox").filter(has=page.locator(".widget-dropdown", has_text="strategy")).last
            expect(curves).to_be_visible(timeout=TIMEOUT_MS)
            title = curves.locator(".gtitle")
            expect(title).to_contain_text("baseline", timeout=60_000)
            curves.locator(".widget-dropdown", has_text="strategy").locator("select").select_option("la")
            expect(title).to_contain_text("soapnet la split", timeout=60_000)
            # LA explorer: "Train LA" trains and shows a row with the test MAE
            button = page.get_by_role("button", name="Train LA")
            button.click()
            explorer = page.locator(".widget-vbox").filter(has=button).last
            expect(explorer.locator("table tbody tr")).to_have_count(1, timeout=TIMEOUT_MS)
            assert "test" in explorer.locator("table").inner_text().lower()
            assert not _problems(page), _problems(page)
            SHOTS.mkdir(parents=True, exist_ok=True)
            _dismiss_news(page)
            explorer.scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / "03_curves_and_la_explorer.png"))
        except Exception:
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "03_curves_and_la_explorer-FAILED.png"), full_page=True)
            raise
        finally:
            browser.close()
