"""The documents quote the committed benchmark results, not numbers typed by hand.

Each table below is generated from a result file under ``benchmarks/results/`` by the script that
wrote it; the test fails when a document's copy and the result disagree (re-run the script's
``--table`` option and paste its output).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("document", ["README.md", "docs/pretraining.md"])
def test_ablation_table_is_the_committed_result(document):
    payload = json.loads((ROOT / "benchmarks/results/ablations.json").read_text())
    table = _script("ablations").markdown_table(payload)
    text = (ROOT / document).read_text()
    assert table in text, (f"{document}: the ablation table differs from benchmarks/results/ablations.json; "
                           "print it with python benchmarks/ablations.py --table benchmarks/results/ablations.json")


@pytest.mark.parametrize("document", ["README.md", "docs/evaluation.md"])
def test_zero_shot_table_is_the_committed_result(document):
    payload = json.loads((ROOT / "benchmarks/results/zero_shot.json").read_text())
    table = _script("zero_shot").markdown_table(payload)
    assert table in (ROOT / document).read_text(), (
        f"{document}: the zero-shot table differs from benchmarks/results/zero_shot.json; print it with "
        "python benchmarks/zero_shot.py --table benchmarks/results/zero_shot.json")


def test_sweep_table_is_the_committed_result():
    record = json.loads((ROOT / "benchmarks/results/sweep_tasks_per_domain.json").read_text())
    table = _script("sweep_tasks_per_domain").markdown_table(record)
    assert table in (ROOT / "docs/pretraining.md").read_text(), (
        "docs/pretraining.md: the sweep table differs from benchmarks/results/sweep_tasks_per_domain.json; print it "
        "with python benchmarks/sweep_tasks_per_domain.py --table benchmarks/results/sweep_tasks_per_domain.json")
