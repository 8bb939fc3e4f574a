"""Quiet programs (vclip.logs): libraries' log lines only with --verbose; tyro's usage errors in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vclip.logs import one_line_usage_error

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def run_program(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO, env=ENV, timeout=300)


@pytest.fixture(scope="module")
def taken_run(tmp_path_factory) -> Path:
    """A run directory that already holds a run: a program started on it stops after its start-up."""
    run = tmp_path_factory.mktemp("logs") / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"kind": "train", "step": 1}) + "\n")
    return run


def test_a_finetune_start_shows_no_library_log_lines(taken_run, tmp_path, synthetic_world):
    import torch

    from vclip.model import VideoCLIP

    torch.manual_seed(0)
    VideoCLIP.from_preset("tiny").save_pretrained(tmp_path / "init")
    done = run_program("vclip.finetune", "--task", "youcook2", "--init", str(tmp_path / "init"), "--data",
                       str(synthetic_world), "--output", str(taken_run), "--no-progress")
    output = done.stdout + done.stderr
    assert done.returncode == 2 and "already holds a run" in done.stderr  # it got past model and data loading
    assert "faiss" not in output.lower(), output
    for line in output.splitlines():  # log lines of the kit only: "<time> INFO vclip.x: ..." or "... __main__: ..."
        if " INFO " in line:
            assert line.split(" INFO ", 1)[1].startswith(("vclip", "__main__")), line


@pytest.mark.parametrize("verbose", [False, True])
def test_library_lines_appear_only_with_verbose(verbose):
    """faiss's loader logs at INFO when it is imported after the programs' logging setup."""
    code = "import sys; from vclip.logs import setup_logging; setup_logging(sys.argv[1] == 'verbose'); import faiss"
    done = subprocess.run([sys.executable, "-c", code, "verbose" if verbose else "quiet"], capture_output=True,
                          text=True, env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr
    assert ("Loading faiss" in done.stderr) == verbose, done.stderr


@pytest.mark.parametrize("program, argv, expected", [
    ("vclip.finetune", ["--task", "coin", "--lrr", "3"], ["--lrr", "did you mean --lr?"]),
    ("vclip.pretrain", ["--run.stepz", "3"], ["--run.stepz", "did you mean --steps or --run.steps?"]),
    ("vclip.evaluate", ["--task", "coin", "--untrained", "tiny", "--data", ".", "--batch-sise", "8"],
     ["--batch-sise", "did you mean --batch-size?"]),
    ("vclip.finetune", ["--task", "coin", "--lr", "abc"], ["--lr", "'abc'"]),
    ("vclip.finetune", ["--task", "coin", "--select", "bogus"], ["'bogus'", "'val', 'test', 'last'"]),
])
def test_misspelt_options_and_bad_values_are_one_line(program, argv, expected):
    done = run_program(program, *argv)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and all(text in lines[0] for text in expected), lines[0]
    assert "\u2502" not in done.stderr and "Traceback" not in done.stderr  # no box, no traceback


def test_the_box_becomes_one_line():
    boxed = """\
\u256d\u2500 Unrecognized options \u2500\u2500\u2500\u2500\u2500\u256e
\u2502 Unrecognized options: --lrr, 3 \u2502
\u2502 \u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500 \u2502
\u2502 Perhaps you meant:            \u2502
\u2502     --lr FLOAT                \u2502
\u2502         peak learning rate    \u2502
\u2502 \u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500 \u2502
\u2502 For full helptext, run x --help \u2502
\u2570\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u256f
"""
    assert one_line_usage_error(boxed) == "Unrecognized options: --lrr, 3; did you mean --lr?"
