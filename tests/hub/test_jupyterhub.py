"""Two students on a real JupyterHub, driven at the same time by headless Chromium.

JupyterHub starts on 127.0.0.1 (free ports, a temporary folder) with the course's own
``hub/jupyterhub_config.py`` — dummy authenticator, JupyterHub's SimpleLocalProcessSpawner (every
server runs as the hub's user: works as root in CI and as a normal user on a laptop), the
``hub/start-course.sh`` start hook and the ``hub/lab-settings`` override — and
configurable-http-proxy from npm. The course is installed the way the instructor guide's recipe
(a) says: in the environment that runs ``jupyterhub-singleuser``; here that is the running
interpreter's environment, which already has the course installed (``pip install -e .[test]`` in
CI); the students' homes hold only the student bundle, so ``import course_utils`` in their kernels
can only come from that installation.

Two students log in at once, each gets the bundle in the home (written by
``course_utils.bundle`` just before), runs ``notebooks/01_rnn.ipynb`` top to bottom (Run > Run All
Cells) with no error output, adds a cell with the LSTM explorer of the browser test's notebook
and moves its forget slider, the kernel's readout and the figure changing. Neither home holds
``solutions/`` or a solution region, and the "Jupyter news" popup is off.

Needs Chromium at /usr/bin/chromium, ``playwright`` for Python, ``jupyterhub`` for Python, Node
and ``configurable-http-proxy`` (``npm install -g configurable-http-proxy``). Without them the
test is skipped, except under CI=true, where it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "browser"))
import test_jupyterlab_widgets as browser_test  # the browser test's helpers

from course_utils.bundle import write_bundle

REPO = Path(__file__).resolve().parent.parent.parent
HUB_CONFIG = REPO / "hub" / "jupyterhub_config.py"
NOTEBOOK = "rnn-course/notebooks/01_rnn.ipynb"
STUDENTS = ("ada", "grace")
HUB_START_TIMEOUT_S = 60
LOGIN_TIMEOUT_MS = 180_000  # both servers start at once on a busy 2-core machine
RUN_TIMEOUT_MS = 300_000  # 01 takes ~13 s alone; two kernels share the cores with everything else
UI_TIMEOUT_MS = 90_000
# once the kernel is idle and every non-empty code cell has run, or a cell failed (Run All then
# stops, leaving the rest unrun): {ran, pending, failed} counts of code cells
ALL_RAN_JS = """() => {
    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = panel && panel.sessionContext && panel.sessionContext.session
                   && panel.sessionContext.session.kernel;
    if (!kernel || kernel.status !== "idle") return false;
    const cells = panel.content.model.cells;
    const counts = {ran: 0, pending: 0, failed: 0};
    for (let i = 0; i < cells.length; i++) {
        const cell = cells.get(i);
        if (cell.type !== "code" || !cell.sharedModel.getSource().trim()) continue;
        counts[cell.executionCount === null ? "pending" : "ran"] += 1;
        for (let j = 0; j < cell.outputs.length; j++)
            if (cell.outputs.get(j).type === "error") counts.failed += 1;
    }
    return (counts.pending === 0 || counts.failed > 0) ? counts : false;
}"""
# error outputs (and tracebacks printed to stderr) of every cell, as text
ERRORS_JS = """() => {
    const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
    const found = [];
    for (let i = 0; i < cells.length; i++) {
        const cell = cells.get(i);
        if (cell.type !== "code") continue;
        for (let j = 0; j < cell.outputs.length; j++) {
            const out = cell.outputs.get(j).toJSON();
            if (out.output_type === "error") found.push(`cell ${i}: ${out.ename}: ${out.evalue}`);
            const text = [].concat(out.text || []).join("");
            if (out.output_type === "stream" && out.name === "stderr" && /Traceback|Error:/.test(text))
                found.push(`cell ${i}: stderr: ${text.slice(0, 300)}`);
        }
    }
    return found;
}"""
# what a student does by hand: a new cell at the end of the notebook, typed and run
ADD_CELL_JS = """async (source) => {
    const app = window.jupyterapp;
    const notebook = app.shell.currentWidget.content;
    notebook.activeCellIndex = notebook.widgets.length - 1;
    await app.commands.execute("notebook:insert-cell-below");
    notebook.activeCell.model.sharedModel.setSource(source);
    await app.commands.execute("notebook:run-cell");
}"""
# the text outputs of the last cell, once it has run
LAST_OUTPUT_JS = """() => {
    const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
    const cell = cells.get(cells.length - 1);
    if (cell.executionCount === null) return null;
    const texts = [];
    for (let j = 0; j < cell.outputs.length; j++) {
        const out = cell.outputs.get(j).toJSON();
        texts.push([].concat(out.text || (out.data && out.data["text/plain"]) || []).join(""));
    }
    return texts.join("");
}"""


def _require_hub() -> None:
    """Skip without JupyterHub, Node or configurable-http-proxy, but fail under CI=true."""
    reason = None
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        reason = "jupyterhub for Python is not installed (pip install -e .[test])"
    else:
        if shutil.which("node") is None:
            reason = "no Node (node) on PATH: configurable-http-proxy needs it (apt-get install nodejs npm)"
        elif shutil.which("configurable-http-proxy") is None:
            reason = "no configurable-http-proxy on PATH (npm install -g configurable-http-proxy)"
    if reason is None:
        return
    if browser_test._in_ci():
        pytest.fail(f"CI=true, and the JupyterHub test cannot run: {reason}")
    pytest.skip(reason)


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def _memory_by_student(hub_pid: int, homes: Path) -> dict[str, dict[str, float]]:
    """Resident memory (MiB) of each student's server and kernels, found below the hub by their cwd."""
    usage: dict[str, dict[str, float]] = {}
    for pid, _ in browser_test._descendants(hub_pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        kind = "kernel" if "ipykernel" in cmdline else "server" if "singleuser" in cmdline else None
        if kind is None or homes not in cwd.parents:
            continue
        student = cwd.relative_to(homes).parts[0]
        entry = usage.setdefault(student, {"server": 0.0, "kernel": 0.0, "kernels": 0})
        entry[kind] += _rss_mib(pid)
        entry["kernels"] += kind == "kernel"
    return usage


@pytest.fixture
def jupyterhub(tmp_path):
    """(base URL, homes folder, hub process, log path) of a running hub; always stopped afterwards."""
    browser_test._require_browser()
    _require_hub()
    bundle = write_bundle(REPO, tmp_path / "bundle" / "rnn-course", archives=False).folder
    homes = tmp_path / "homes"
    port, hub_port, api_port = (browser_test._free_port() for _ in range(3))
    config = tmp_path / "test_config.py"
    config.write_text(
        f"load_subconfig({str(HUB_CONFIG)!r})  # the course's configuration, as the guide gives it\n"
        "c = get_config()\n"
        f"c.JupyterHub.port = {port}\n"
        f"c.JupyterHub.hub_port = {hub_port}\n"
        f"c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:{api_port}'\n"
        "c.Spawner.args.append('--LabApp.expose_app_in_browser=True')  # window.jupyterapp, for the test only\n")
    env = {**os.environ, "RNN_HUB_HOMES": str(homes), "RNN_COURSE_BUNDLE": str(bundle),
           "RNN_HUB_PASSWORD": "lab-password",
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    env.pop("MPLBACKEND", None)  # the kernels inherit it; the notebooks must show their figures
    log_path = tmp_path / "jupyterhub.log"
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        hub = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(config)], cwd=tmp_path, env=env,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            # through the proxy: both the proxy and the hub are up
            browser_test.wait_until_up(hub, f"{base}/hub/api/", HUB_START_TIMEOUT_S, log_path, "JupyterHub")
            yield base, homes, bundle, hub, log_path
        finally:
            browser_test._stop_server(hub)


def _demo_source() -> str:
    """The LSTM explorer cell of the browser test's notebook (the same sliders and readouts)."""
    cells = json.loads(browser_test.NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    return "".join(next(c for c in cells if c["cell_type"] == "code")["source"])


@pytest.mark.hub
def test_two_students_run_a_notebook_and_move_a_slider_at_the_same_time(jupyterhub, tmp_path):
    from playwright.sync_api import sync_playwright

    base, homes, bundle, hub, log_path = jupyterhub
    problems: list[str] = []
    timings: dict[str, float] = {}

    def on_console(name):
        def record(message):
            if message.type == "error" and not any(n in message.text for n in browser_test.IGNORED_CONSOLE_ERRORS):
                problems.append(f"{name}: console error: {message.text}")
        return record

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(browser_test.CHROMIUM), headless=True,
                                             args=browser_test.CHROMIUM_ARGS)
        pages = {}
        for name in STUDENTS:  # separate contexts: separate cookies, two students
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.on("console", on_console(name))
            page.on("pageerror", lambda error, name=name: problems.append(f"{name}: page error: {error}"))
            pages[name] = page
        try:
            start = time.monotonic()
            for name, page in pages.items():  # both log in before either server is up
                page.goto(f"{base}/hub/login")
                page.fill("#username_input", name)
                page.fill("#password_input", "lab-password")
                page.click("#login_submit")
            for name, page in pages.items():
                page.wait_for_url(re.compile(rf"/user/{name}/lab"), timeout=LOGIN_TIMEOUT_MS)
                page.wait_for_selector(".jp-DirListing-item", timeout=UI_TIMEOUT_MS)  # the default URL's listing
                timings[f"{name}: login to JupyterLab"] = time.monotonic() - start
            for name in STUDENTS:  # the bundle arrived through the start hook, and nothing else did
                home = homes / name
                assert sorted(p.relative_to(home).as_posix() for p in home.joinpath("rnn-course").rglob("*")
                              if p.is_file()) == sorted("rnn-course/" + p.relative_to(bundle).as_posix()
                                                        for p in bundle.rglob("*") if p.is_file())
                assert not [p for p in home.rglob("*") if p.name == "solutions"]
                for path in home.rglob("*.ipynb"):
                    assert "### BEGIN SOLUTION" not in path.read_text(encoding="utf-8"), path

            start = time.monotonic()
            for name, page in pages.items():
                page.goto(f"{base}/user/{name}/lab/tree/{NOTEBOOK}")
            for name, page in pages.items():  # Run All in both before waiting for either
                page.wait_for_function(browser_test.KERNEL_READY_JS, timeout=UI_TIMEOUT_MS)
                page.locator(".lm-MenuBar-item", has_text="Run").first.click()
                page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()
            for name, page in pages.items():
                counts = page.wait_for_function(ALL_RAN_JS, timeout=RUN_TIMEOUT_MS, polling=500).json_value()
                timings[f"{name}: {NOTEBOOK} top to bottom (kernel start included)"] = time.monotonic() - start
                assert page.evaluate(ERRORS_JS) == [], f"{name}: error outputs in {NOTEBOOK}"
                assert counts["pending"] == 0 and counts["ran"] >= 10, f"{name}: {counts}"
            memory = _memory_by_student(hub.pid, homes)

            for name, page in pages.items():  # the kernel imports the installed course, not a copy
                page.evaluate(ADD_CELL_JS, "import course_utils, sys\nprint(course_utils.__file__)\n"
                                           "print(sys.executable)")
            for name, page in pages.items():
                output = page.wait_for_function(LAST_OUTPUT_JS, timeout=UI_TIMEOUT_MS).json_value()
                module_file, executable = output.split()
                assert str(homes) not in module_file, f"{name}: course_utils imported from the home: {module_file}"
                assert Path(executable).resolve() == Path(sys.executable).resolve()

            for name, page in pages.items():
                page.evaluate(ADD_CELL_JS, _demo_source())
            for name, page in pages.items():
                browser_test.move_forget_to_zero(page, UI_TIMEOUT_MS)  # the figure and c_t follow the slider

            for name, page in pages.items():  # the settings override is in force; no news popup
                schema = page.evaluate(  # the server applies overrides.json to the schema's defaults
                    "async (id) => (await window.jupyterapp.serviceManager.settings.fetch(id)).schema.properties",
                    "@jupyterlab/apputils-extension:notification")
                assert schema["fetchNews"]["default"] == "false", schema["fetchNews"]
                assert schema["checkForUpdates"]["default"] is False, schema["checkForUpdates"]
                assert page.get_by_text("official Jupyter news").count() == 0
        except Exception:
            for name, page in pages.items():
                page.screenshot(path=str(tmp_path / f"failure-{name}.png"))
            print(f"screenshots: {tmp_path}/failure-*.png\nhub log: {log_path}\n{log_path.read_text()[-4000:]}")
            raise
        finally:
            browser.close()

    for label, seconds in timings.items():
        print(f"{label}: {seconds:.1f} s")
    for name, entry in sorted(memory.items()):
        print(f"{name}: server {entry['server']:.0f} MiB, {entry['kernels']:.0f} kernel(s) {entry['kernel']:.0f} MiB")
    assert sorted(memory) == sorted(STUDENTS) and all(e["kernels"] == 1 for e in memory.values()), memory
    assert not problems, "the browsers reported errors:\n" + "\n".join(problems)
    for name in STUDENTS:
        assert not [p for p in (homes / name).rglob("*") if p.name == "solutions"]


@pytest.mark.parametrize("missing, match", [("node", "no Node"), ("configurable-http-proxy", "configurable-http-proxy")])
@pytest.mark.parametrize("ci, outcome", [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_missing_node_or_proxy_fails_under_ci_and_skips_elsewhere(monkeypatch, missing, match, ci, outcome):
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda cmd, *a, **k: None if cmd == missing else real_which(cmd, *a, **k))
    monkeypatch.setenv("CI", ci)
    pytest.importorskip("jupyterhub")
    with pytest.raises(outcome, match=match):
        _require_hub()
