"""The explorers where readers use them: notebooks 04 and 05 run in JupyterLab, in headless Chromium.

The widget tests in test_viz.py drive the callbacks without a front-end; what only a browser shows
is a widget that renders as text, a JupyterLab extension missing from the environment, or a figure
that never updates. Each test opens a temporary copy of a notebook (smoke profile, interactive=True,
outputs into a temporary tree), runs all cells, moves the explorer's controls and checks that the
figure's PNG changes and that no JavaScript error or "Error displaying widget" appears.

Chromium is Debian's (`make browser` installs it); Playwright only drives it, never downloads one.
RPMNET_SAVE_SCREENSHOTS=1 also writes each explorer's screenshot to results/figures/browser_*.png.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import nbformat
import pytest

from rpmnet.fileio import atomic_path
from rpmnet.notebooks import NOTEBOOKS, REPO

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

CHROMIUM = Path(os.environ.get("RPMNET_CHROMIUM", "/usr/bin/chromium"))
# The flags that run Debian's Chromium headless as root in a container, with nothing going online.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SAVE_SCREENSHOTS = os.environ.get("RPMNET_SAVE_SCREENSHOTS") == "1"
# 05's grid cut to what its per-attribute comparison needs (deformable, one other matching module)
# and a baseline (no training), so the mask explorer has a third cell to switch to: the full smoke
# grid would add a trained cell (about 20 s) and show nothing more here.
CELLS_05 = ["zero-flow", "resnet18-deformable-l3-d1", "resnet18-standard-l3-d1"]

SERVER_START_S = 120     # JupyterLab answering /api/status
PAGE_READY_S = 120       # notebook open, kernel idle
RUN_ALL_S = 360          # every cell run at the smoke profile: ~30 s (04), ~50 s (05) on 2 idle
                         # cores, but CI may share them (4x slower seen here under load 14)
WIDGET_S = 30            # a widget appears, or its figure changes after a control moved


def _missing_browser() -> str | None:
    """Why the browser test cannot run here, or None."""
    if not CHROMIUM.is_file():
        if shutil.which("apt-get") is None:
            return f"no Chromium at {CHROMIUM} and no apt-get to install it (Debian's `chromium`)"
        return f"no Chromium at {CHROMIUM}: run `make browser` (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "no Python package playwright: run `make setup` (pyproject's dev extras)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path, lines: int = 25) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _copy_notebook(name: str, folder: Path, tree: Path, **extra) -> Path:
    """notebooks/<name>.ipynb -> folder, outputs cleared, the parameters a reader would set to run
    it quickly (papermill's own injection, so the cell looks as `make reproduce` writes it)."""
    from papermill.parameterize import parameterize_notebook

    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    parameters = dict(profile="smoke", device="cpu", seed=0, interactive=True,
                      results_dir=str(tree / "results"), data_dir=str(tree / "data"),
                      checkpoints_dir=str(tree / "checkpoints"), **extra)
    nb = parameterize_notebook(nb, parameters, kernel_name="python3", language="python")
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def _kernels_of(runtime_dir: Path) -> list:
    """Kernel processes this server started: their command line names our runtime folder."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error, TypeError):
            if any(str(runtime_dir) in part for part in proc.info["cmdline"]):
                found.append(proc)
    return found


def _stop(proc: subprocess.Popen, runtime_dir: Path) -> None:
    """SIGTERM lets JupyterLab shut its kernels down; whatever is left gets SIGKILL. Kernels run
    in their own session (jupyter_client), so they are found by their connection files."""
    kernels = _kernels_of(runtime_dir)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    for kernel in kernels + _kernels_of(runtime_dir):
        with contextlib.suppress(Exception):
            kernel.kill()
            kernel.wait(timeout=10)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab on a free loopback port with a one-off token, serving temporary copies of
    notebooks 04 and 05; yields {url, token, folder, root, log}. Its config, settings, runtime
    and data folders are temporary too (nothing read from or written to ~). Always shut down,
    port closed."""
    missing = _missing_browser()
    if missing:
        pytest.skip(missing)
    root = tmp_path_factory.mktemp("browser")
    folder, tree = root / "notebooks", root / "tree"
    folder.mkdir()
    _copy_notebook("04_visualizations_fig2", folder, tree)
    _copy_notebook("05_propagation_results", folder, tree, cells=CELLS_05)
    runtime, config = root / "jupyter-runtime", root / "jupyter-config"
    # Hide the news prompt: a toast over the notebook, and it would ask to go online.
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(
        '{"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": true}}')
    # Cells record their run times (metadata.execution), which a slow run's message reports.
    settings = root / "lab-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"recordTiming": true}')
    port, token = _free_port(), uuid.uuid4().hex
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(runtime), JUPYTER_CONFIG_DIR=str(config),
               JUPYTER_DATA_DIR=str(root / "jupyter-data"),   # kernels and widgets: sys.prefix
               JUPYTERLAB_SETTINGS_DIR=str(root / "lab-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(root / "lab-workspaces"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    log = root / "jupyterlab.log"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", "--port-retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={folder}", "--LabApp.expose_app_in_browser=True",
               # Nothing online: no extension index, no update check.
               "--LabApp.extension_manager=readonly",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:   # CI and this container run as root
        command.append("--allow-root")
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=folder, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode} before answering; "
                            f"its log ({log}):\n{_tail(log)}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer on {url} within {SERVER_START_S} s; "
                            f"its log ({log}):\n{_tail(log)}")
            time.sleep(0.5)
        yield dict(url=url, token=token, folder=folder, root=root, log=log)
    finally:
        _stop(proc, runtime)
        assert not _port_open(port), f"port {port} still open after JupyterLab was stopped"


@pytest.fixture(scope="module")
def browser(lab, tmp_path_factory):
    """One headless Chromium page (new empty profile) on JupyterLab for the module, so the
    front-end loads once. JavaScript errors are recorded in page.js_errors."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM),
            headless=True, args=CHROMIUM_FLAGS, viewport={"width": 1400, "height": 1000})
        try:
            pg = context.pages[0] if context.pages else context.new_page()
            pg.js_errors = []
            pg.on("pageerror", lambda err: pg.js_errors.append(f"pageerror: {err}"))
            pg.on("console", lambda msg: pg.js_errors.append(f"console.error: {msg.text}")
                  if msg.type == "error" else None)
            # ?reset: an empty workspace, no tab restored from an earlier session.
            pg.goto(f"{lab['url']}/lab?reset&token={lab['token']}", timeout=PAGE_READY_S * 1000)
            _wait(pg, "() => !!(window.jupyterapp && window.jupyterapp.shell)", None,
                  PAGE_READY_S, "JupyterLab's front-end did not load", lab)
            pg.evaluate("() => { window.jupyterapp.restored.then(() => { window.labRestored = true; }); }")
            _wait(pg, "() => window.labRestored === true", None, PAGE_READY_S,
                  "JupyterLab's front-end did not finish starting", lab)
            yield pg
        finally:
            context.close()


CLOSE_NOTEBOOKS = """async () => {
    const closing = Array.from(window.jupyterapp.shell.widgets("main"))
        .filter(w => w.context && w.sessionContext)
        .map(async w => { await w.sessionContext.shutdown(); w.context.model.dirty = false; w.close(); });
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), 15000));
    await Promise.race([Promise.all(closing), timeout]);
}"""


@pytest.fixture
def page(browser, lab):
    """The module's page; afterwards this test's notebook is closed and its kernel shut down (the
    next notebook gets the CPU and memory), and its recorded errors are forgotten."""
    yield browser
    try:
        browser.evaluate(CLOSE_NOTEBOOKS)
    finally:
        _shutdown_kernels(lab)
        browser.js_errors.clear()


def _shutdown_kernels(lab) -> None:
    """Every kernel of the server, shut down (the front-end may have failed to)."""
    import json

    def call(method, path):
        request = urllib.request.Request(f"{lab['url']}{path}", method=method,
                                         headers={"Authorization": f"token {lab['token']}"})
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.read()

    for kernel in json.loads(call("GET", "/api/kernels")):
        call("DELETE", f"/api/kernels/{kernel['id']}")


def _wait(page, predicate: str, arg, seconds: float, what: str, lab=None):
    """page.wait_for_function with a failure that says what did not happen."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        return page.wait_for_function(predicate, arg=arg, timeout=seconds * 1000, polling=250)
    except PlaywrightTimeout:
        log = f"\nJupyterLab's log:\n{_tail(lab['log'])}" if lab else ""
        pytest.fail(f"{what} within {seconds:.0f} s; JavaScript errors: {page.js_errors}{log}")


# The notebook's panel is found by its path: the shell's current widget could be another tab.
PANEL = """(path) => {
    if (!window.jupyterapp) return null;
    for (const w of window.jupyterapp.shell.widgets("main"))
        if (w.context && w.context.path === path && w.content && w.content.model) return w;
    return null;
}"""
NOTEBOOK_STATE = f"""(path) => {{
    const panel = ({PANEL})(path);
    if (!panel || !panel.sessionContext) return null;""" + """
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    const cells = panel.content.model.toJSON().cells.filter(c => c.cell_type === "code");
    return {status: kernel ? kernel.status : "none",
            executed: cells.filter(c => c.execution_count !== null).length, code: cells.length,
            errors: cells.flatMap(c => c.outputs).filter(o => o.output_type === "error")
                         .map(o => o.ename + ": " + o.evalue),
            seconds: cells.map(c => {
                const t = c.metadata.execution || {};
                const start = t["iopub.execute_input"], end = t["shell.execute_reply"];
                return start && end ? Math.round((Date.parse(end) - Date.parse(start)) / 100) / 10 : null;
            })};
}"""


class Phases:
    """Seconds per phase of a test, printed at its end (pytest shows them with -rP or on failure)."""

    def __init__(self, name):
        self.name, self.last, self.times, self.slowest = name, time.monotonic(), [], []

    def __call__(self, phase):
        now = time.monotonic()
        self.times.append(f"{phase} {now - self.last:.1f} s")
        self.last = now


@pytest.fixture
def phases(request):
    timer = Phases(request.node.name)
    yield timer
    slowest = ", ".join(f"code cell {i}: {t} s" for t, i in timer.slowest)
    print(f"{timer.name}: {', '.join(timer.times)}" + (f" (slowest {slowest})" if slowest else ""))


def _run_notebook(page, lab, name: str, phases) -> None:
    """Open the notebook (as a double-click in the file browser does), wait for its kernel, Run
    All (the command the Run menu calls), and wait until every code cell has run without an
    error."""
    path = f"{name}.ipynb"
    page.evaluate("""(path) => { window.jupyterapp.commands.execute("docmanager:open",
                                                                 {path, factory: "Notebook"}); }""",
                  path)
    _wait(page, f"(path) => {{ const s = ({NOTEBOOK_STATE})(path); return s && s.status === 'idle'; }}",
          path, PAGE_READY_S, f"{name}: the notebook did not open with an idle kernel", lab)
    phases("open")
    page.evaluate(f"""(path) => {{
        const panel = ({PANEL})(path);
        window.jupyterapp.shell.activateById(panel.id);
        window.jupyterapp.commands.execute("notebook:run-all-cells");
    }}""", path)
    done = (f"(path) => {{ const s = ({NOTEBOOK_STATE})(path); return s && (s.errors.length > 0 || "
            f"(s.executed === s.code && s.status === 'idle')) && s; }}")
    try:
        state = _wait(page, done, path, RUN_ALL_S, f"{name}: Run All did not finish", lab).json_value()
    except BaseException:
        print(f"{name} when Run All was given up (seconds per code cell): "
              f"{page.evaluate(NOTEBOOK_STATE, path)}")
        raise
    phases("run all")
    phases.slowest = sorted(((t, i + 1) for i, t in enumerate(state["seconds"]) if t), reverse=True)[:3]
    assert not state["errors"], f"{name}: cells raised {state['errors']}"


def _explorer(page, has: str, name: str):
    """The explorer's widget box (the VBox around a control named `has`), once rendered."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = page.locator(".jp-OutputArea-output .widget-vbox").filter(has=page.locator(has)).last
    try:
        box.wait_for(state="attached", timeout=WIDGET_S * 1000)
        box.scroll_into_view_if_needed(timeout=WIDGET_S * 1000)
        box.locator("img").first.wait_for(state="visible", timeout=WIDGET_S * 1000)
    except PlaywrightTimeout:
        texts = page.locator(".jp-OutputArea-output").all_inner_texts()[-2:]
        pytest.fail(f"{name}: the explorer did not render with a figure within {WIDGET_S} s; "
                    f"last outputs: {texts}; JavaScript errors: {page.js_errors}")
    return box


def _figure(box) -> str:
    return box.locator("img").first.get_attribute("src") or ""


def _changes_figure(page, box, action, what: str) -> str:
    """Do `action`, then wait for the explorer's PNG to differ from before; -> the new PNG."""
    before = _figure(box)
    action()
    _wait(page, "([box, before]) => { const img = box.querySelector('img'); "
          "return img !== null && img.src !== before; }",
          [box.element_handle(), before], WIDGET_S, f"{what}: the figure did not change")
    after = _figure(box)
    assert after and after != before, f"{what}: the figure did not change"
    return after


def _move_slider(page, box, label: str) -> None:
    """Drag the slider's handle a quarter of its track to the right, as a reader does."""
    slider = box.locator(".widget-slider").filter(has_text=label)
    readout = slider.locator(".widget-readout")
    before = readout.inner_text()
    track = slider.locator(".noUi-target").bounding_box()
    handle = slider.locator(".noUi-handle").bounding_box()
    x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + track["width"] / 4, y, steps=5)
    page.mouse.up()
    assert readout.inner_text() != before, f"slider {label!r} did not move (readout {before})"


def _check_clean(page, name: str) -> None:
    assert page.get_by_text("Error displaying widget").count() == 0, \
        f"{name}: JupyterLab shows 'Error displaying widget'"
    assert not page.js_errors, f"{name}: JavaScript errors: {page.js_errors}"


def _screenshot(box, tmp_path: Path, name: str) -> Path:
    """The explorer (controls and figure) as a PNG test artefact; with RPMNET_SAVE_SCREENSHOTS=1
    also under results/figures/ for the README."""
    shot = tmp_path / f"{name}.png"
    box.screenshot(path=str(shot))
    if SAVE_SCREENSHOTS:
        with atomic_path(REPO / "results" / "figures" / f"{name}.png") as tmp:
            shutil.copyfile(shot, tmp)
    return shot


def test_fig2_explorer_in_jupyterlab(lab, page, phases, tmp_path):
    name = "04_visualizations_fig2"
    _run_notebook(page, lab, name, phases)
    box = _explorer(page, ".widget-toggle-buttons", name)
    phases("render")
    first = _figure(box)
    _changes_figure(page, box, lambda: _move_slider(page, box, "frame t"), f"{name}: frame slider")
    rows = box.locator(".widget-toggle-buttons button")
    assert rows.count() == 4, f"{name}: expected the 4 row buttons, got {rows.all_inner_texts()}"
    row106 = box.locator(".widget-toggle-buttons button", has_text="row 106")
    last = _changes_figure(page, box, row106.click, f"{name}: row selector")
    assert "mod-active" in (row106.get_attribute("class") or ""), f"{name}: row 106 not selected"
    assert last != first
    phases("controls")
    _screenshot(box, tmp_path, "browser_04_fig2_explorer")
    _check_clean(page, name)


def test_mask_explorer_in_jupyterlab(lab, page, phases, tmp_path):
    name = "05_propagation_results"
    _run_notebook(page, lab, name, phases)
    box = _explorer(page, ".widget-dropdown select", name)
    phases("render")
    first = _figure(box)
    _changes_figure(page, box, lambda: _move_slider(page, box, "frame"), f"{name}: frame slider")
    left, right = (box.locator(".widget-dropdown").filter(has_text=side).locator("select")
                   for side in ("left", "right"))
    options = right.locator("option").all_inner_texts()
    other = next(o for o in options if o not in (left.input_value(), right.input_value()))
    last = _changes_figure(page, box, lambda: right.select_option(other), f"{name}: right cell")
    assert last != first
    phases("controls")
    _screenshot(box, tmp_path, "browser_05_mask_explorer")
    _check_clean(page, name)
