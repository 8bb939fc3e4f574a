"""The notebook check is portable: outputs recorded on one CPU are checked on another, without going blind.

The committed notebooks are executed (recorded) on one machine. Float results of torch differ in their last digits
between CPU kernel paths (ATen picks AVX-512, AVX2 or plain kernels from the CPU; the environment variable
``ATEN_CPU_CAPABILITY`` forces one) and between thread counts. So ``make notebooks`` runs ``pytest --nbval`` under
``ATEN_CPU_CAPABILITY=default`` and another thread count than the recording's (``VCLIP_NOTEBOOK_THREADS``): on
every machine the check runs under a kernel path that differs from the one that recorded the outputs. It passes
because the cells that print torch floats carry ``# NBVAL_IGNORE_OUTPUT`` and every claim the prose makes about
them is a :func:`vclip.notebooks.check` (compared: it prints the same line everywhere). docs/notebooks.md, "How the
notebook check stays portable".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from vclip import notebooks as runner

REPO = Path(__file__).resolve().parents[1]

# One backward of the tiny model on seeded NumPy inputs: prints the kernel path torch chose and the gradient norm.
BACKWARD = """
import numpy as np, torch
from vclip.loss import contrastive_loss
from vclip.model import VideoCLIP
from vclip.tokenizer import encode_texts
torch.set_num_threads(1)
torch.manual_seed(0)
model = VideoCLIP.from_preset("tiny").eval()
video = torch.from_numpy(np.random.default_rng(0).standard_normal((4, 16, 512)).astype(np.float32))
ids, mask = encode_texts(["crack the eggs", "whisk the eggs", "add the salt", "chop the onion"])
out = model(video, torch.ones(4, 16, dtype=torch.bool), ids, mask)
contrastive_loss(out.pooled_video, out.pooled_text).backward()
norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
print(torch.backends.cpu.get_cpu_capability(), repr(norm.item()))
"""


def _environment(capability: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", MPLBACKEND="Agg",
               PYDEVD_DISABLE_FILE_VALIDATION="1")
    if capability is not None:
        env["ATEN_CPU_CAPABILITY"] = capability
    return env


def _backward(capability: str | None) -> tuple[str, str]:
    done = subprocess.run([sys.executable, "-c", BACKWARD], capture_output=True, text=True, env=_environment(capability),
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    path, norm = done.stdout.split()[-2:]
    return path, norm


@pytest.mark.slow
def test_the_kernel_path_changes_the_floats_of_a_backward():
    """The premise: forcing ATen's plain kernels changes a backward's gradient norm in its last digits."""
    native, native_norm = _backward(None)
    if native == "DEFAULT":
        pytest.skip("this CPU has no vector kernels (AVX2 or AVX-512) that ATEN_CPU_CAPABILITY could switch off")
    forced, forced_norm = _backward("default")
    assert forced == "DEFAULT"
    assert forced_norm != native_norm, f"{native} and DEFAULT kernels gave the same gradient norm {native_norm}"
    assert float(forced_norm) == pytest.approx(float(native_norm), rel=1e-5)  # the same result, other last digits


def _notebooks_stage() -> str:
    """The nbval command of the Makefile's `notebooks` stage, as make would run it."""
    done = subprocess.run(["make", "-n", "notebooks"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if "--nbval" in line]
    assert len(lines) == 1, done.stdout
    return lines[0]


def test_make_notebooks_checks_under_another_kernel_path_and_thread_count():
    import inspect

    command = _notebooks_stage()
    assert "ATEN_CPU_CAPABILITY=default" in command
    threads = [word.split("=", 1)[1] for word in command.split() if word.startswith(f"{runner.THREADS_ENV}=")]
    recorded_with = inspect.signature(runner.setup_notebook).parameters["threads"].default
    assert threads and int(threads[0]) != recorded_with, command
    assert "--nbval-sanitize-with notebooks/sanitize.cfg" in command


def test_setup_notebook_takes_its_thread_count_from_the_environment(monkeypatch):
    code = "from vclip.notebooks import setup_notebook; import torch; setup_notebook(); print(torch.get_num_threads())"
    env = {**_environment(None), runner.THREADS_ENV: "2"}  # (without it, every committed chapter runs with 1)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and done.stdout.split()[-1] == "2", done.stderr[-2000:]
    monkeypatch.setenv(runner.THREADS_ENV, "two")
    with pytest.raises(ValueError, match=f"{runner.THREADS_ENV} must be a whole number of threads, got 'two'"):
        runner.setup_notebook()


def test_check_prints_the_claim_and_fails_naming_it(capsys):
    import numpy as np

    runner.check(np.float32(3.0) > 2, "three is above two")
    assert capsys.readouterr().out == "\u2713 three is above two\n"
    with pytest.raises(AssertionError, match=r"does not hold: one is above two \(1 vs 2\)$"):
        runner.check(1 > 2, "one is above two", detail="1 vs 2")
    assert capsys.readouterr().out == ""  # a failed claim prints no tick
    with pytest.raises(ValueError, match="non-empty sentence"):
        runner.check(True, " ")


def _nbval(notebook: Path, capability: str | None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "--nbval", str(notebook), "--nbval-current-env",
                           "--nbval-sanitize-with", str(REPO / "notebooks" / "sanitize.cfg"), "-p", "no:cacheprovider"],
                          capture_output=True, text=True, env=_environment(capability), cwd=notebook.parent,
                          timeout=600)


@pytest.mark.slow
def test_nbval_passes_under_another_kernel_path_only_with_the_marker(tmp_path):
    """Recorded with the native kernels, checked with the plain ones: the cell printing a gradient norm fails the
    check unless it carries the marker, and its claim, printed by `check`, is compared and holds."""
    import papermill

    if _backward(None)[0] == "DEFAULT":
        pytest.skip("this CPU has no vector kernels that ATEN_CPU_CAPABILITY could switch off")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    backward = "\n".join(line for line in BACKWARD.strip().splitlines()[:-1] if "set_num_threads" not in line)
    nb.cells = [nbformat.v4.new_code_cell("import math\nfrom vclip.notebooks import check, setup_notebook\nsetup_notebook()"),
                nbformat.v4.new_code_cell(backward),
                nbformat.v4.new_code_cell("# NBVAL_IGNORE_OUTPUT\nprint(f'gradient norm {norm.item()!r}')"),
                nbformat.v4.new_code_cell("check(math.isfinite(norm.item()) and norm.item() > 1, 'the gradient is finite "
                                          "and not vanishing')")]
    nbformat.write(nb, tmp_path / "draft.ipynb")
    recorded = tmp_path / "recorded.ipynb"
    papermill.execute_notebook(str(tmp_path / "draft.ipynb"), str(recorded), kernel_name="python3", cwd=str(tmp_path),
                               progress_bar=False, log_output=False, execution_timeout=300)
    assert "\u2713 the gradient is finite" in json.dumps(nbformat.read(recorded, as_version=4).cells[3].outputs,
                                                         ensure_ascii=False)
    unmarked = nbformat.read(recorded, as_version=4)
    unmarked.cells[2].source = unmarked.cells[2].source.replace("# NBVAL_IGNORE_OUTPUT\n", "")
    nbformat.write(unmarked, tmp_path / "unmarked.ipynb")

    checked = _nbval(recorded, "default")
    assert checked.returncode == 0, checked.stdout[-3000:]
    same_path = _nbval(tmp_path / "unmarked.ipynb", None)  # the recording's kernel path: the digits are reproducible
    assert same_path.returncode == 0, same_path.stdout[-3000:]
    other_path = _nbval(tmp_path / "unmarked.ipynb", "default")  # another kernel path: the digits move
    assert other_path.returncode != 0 and "gradient norm" in other_path.stdout, other_path.stdout[-3000:]
