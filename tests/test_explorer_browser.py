"""The explorer of notebook 07 in a real browser: JupyterLab on localhost, driven by Playwright for Python
through Debian's ``chromium`` executable (no browser download).

Opens a notebook with a live kernel, runs its cells, types a query into the explorer's text box, presses
Enter and checks that the result table changes; the screenshot goes to ``runs/browser_check/explorer.png``.
On a user's machine it is skipped, with the one-line reason, when Playwright or ``chromium`` is absent
(``apt-get install -y chromium``). In CI (``CI=true``) it must run: ``.ci/run`` installs Debian's
chromium when it is missing, and the test fails, with the reason, if it still cannot run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
IN_CI = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")
if importlib.util.find_spec("playwright") is None:
    CANNOT_RUN = "Playwright for Python is not installed (pip install -e '.[dev]')"
elif CHROMIUM is None:
    CANNOT_RUN = "no chromium executable (on Debian: apt-get install -y chromium)"
else:
    CANNOT_RUN = None
REPO = Path(__file__).resolve().parents[1]
QUERY = "whisk the eggs"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CANNOT_RUN is not None and not IN_CI, reason=str(CANNOT_RUN)),
]


@pytest.fixture(autouse=True, scope="session")
def browser_check_can_run():
    """In CI the check must run: a missing browser is a failure there, not a skip."""
    if CANNOT_RUN is not None:
        pytest.fail(f"CI=true, but the browser check cannot run: {CANNOT_RUN}; .ci/run installs chromium "
                    "as root or with sudo", pytrace=False)

EXPLORER_CELL = """\
from pathlib import Path

import torch
from IPython.display import display

from vclip import viz
from vclip.data.formats import load_features
from vclip.inference import VideoCLIPPipeline
from vclip.model import VideoCLIP
from vclip.tasks.retrieval import read_youcook_csv

torch.manual_seed(0)
youcook = Path({youcook!r})
clips = read_youcook_csv(youcook / "validation_youcook.csv")
video_ids = list(dict.fromkeys(c.video_id for c in clips))[:12]
features = [load_features(youcook / "features" / f"{{v}}.npy") for v in video_ids]
captions = {{v: [(c.start, c.end, c.text) for c in clips if c.video_id == v] for v in video_ids}}
search = viz.model_search(VideoCLIPPipeline(VideoCLIP.from_preset("tiny").eval(), device="cpu"), video_ids,
                          features, captions)
explorer = viz.Explorer(search, initial_query="chop the onion", k=4)
display(explorer.widget)
"""


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright's launch arguments, with the system's Chromium instead of a downloaded browser."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": ["--disable-gpu", "--no-first-run"]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path, synthetic_world):
    """A JupyterLab server on localhost whose root holds one notebook that builds the explorer."""
    import nbformat

    root = tmp_path / "root"
    root.mkdir()
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(EXPLORER_CELL.format(youcook=str(synthetic_world / "youcook2")))]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, root / "explorer.ipynb")
    port, token = _free_port(), os.urandom(12).hex()
    log = (tmp_path / "lab.log").open("w")
    lab = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         "--LabApp.news_url=None", "--allow-root"],
        stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, "TQDM_DISABLE": "1"})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}").close()
            break
        except OSError:
            if time.monotonic() > deadline or lab.poll() is not None:
                lab.kill()
                pytest.fail("JupyterLab did not start: " + (tmp_path / "lab.log").read_text()[-2000:])
            time.sleep(0.5)
    yield f"{base}/lab/tree/explorer.ipynb?token={token}&reset"
    lab.terminate()
    try:
        lab.wait(timeout=20)
    except subprocess.TimeoutExpired:
        lab.kill()
    log.close()


def test_the_explorer_answers_a_typed_query_in_jupyterlab(jupyterlab, page):
    page.set_viewport_size({"width": 1100, "height": 1000})
    page.goto(jupyterlab)
    panel = "Array.from(jupyterapp.shell.widgets('main')).find(w => w.sessionContext)"
    page.wait_for_function(f"window.jupyterapp && {panel} && {panel}.sessionContext.kernelDisplayStatus === 'idle'",
                           timeout=120_000)
    page.evaluate(f"jupyterapp.shell.activateById({panel}.id)")
    page.evaluate("jupyterapp.commands.execute('notebook:run-all-cells')")
    query_box = page.locator(".jp-OutputArea .widget-text input")
    query_box.wait_for(timeout=300_000)
    table = page.locator(".jp-OutputArea .widget-html").first
    before = table.inner_text()
    image = "document.querySelector('.jp-OutputArea .widget-image')"
    figure_before = page.evaluate(f"{image} ? {image}.src : ''")
    query_box.fill(QUERY)
    query_box.press("Enter")
    page.wait_for_function("before => document.querySelector('.jp-OutputArea .widget-html').innerText !== before",
                           arg=before, timeout=120_000)
    # the figure of the ranked videos is redrawn for the new query too
    page.wait_for_function(f"before => {image} && {image}.src !== before", arg=figure_before, timeout=60_000)
    assert query_box.input_value() == QUERY
    assert page.locator(".jp-OutputArea .widget-image").count() >= 1  # the figure of the ranked videos
    after = table.inner_text()
    assert after != before and any(line.strip() for line in after.splitlines())
    screenshot = REPO / "runs" / "browser_check" / "explorer.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot))
    print(json.dumps({"table": after, "screenshot": str(screenshot)}))
