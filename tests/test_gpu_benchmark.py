"""benchmarks/gpu.py on a machine without a GPU: one clear line, exit 0, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_gpu_benchmark_says_no_gpu_in_one_line(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1"}  # no GPU visible, whatever the machine
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu.py"), "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("no GPU: ") and "nothing written" in lines[0], done.stdout
    assert not out.exists()
