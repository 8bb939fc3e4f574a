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


def test_retrieval_table_is_the_committed_result():
    payload = json.loads((ROOT / "benchmarks/results/retrieval.json").read_text())
    assert payload["complete"], "benchmarks/results/retrieval.json: not every size (10k, 100k, 1.2M) was measured"
    table = _script("bench_retrieval").markdown_table(payload)
    assert table in (ROOT / "docs/performance.md").read_text(), "run bench_retrieval.py --markdown and paste its table"


@pytest.mark.parametrize("document", ["README.md", "docs/finetuning.md"])
def test_finetune_table_is_the_committed_result(document):
    payload = json.loads((ROOT / "benchmarks/results/finetune.json").read_text())
    table = _script("finetune").markdown_table(payload)
    assert table in (ROOT / document).read_text(), (
        f"{document}: the fine-tuning table differs from benchmarks/results/finetune.json; print it with "
        "python benchmarks/finetune.py --table benchmarks/results/finetune.json")


@pytest.mark.parametrize("document", ["README.md", "docs/pretraining.md"])
def test_table7_beside_the_paper_is_the_committed_result(document):
    """The howto world's Table 7 (and the teaching world's) beside the paper's, as the script prints it."""
    ablations = _script("ablations")
    results = {"teaching world": json.loads((ROOT / "benchmarks/results/ablations.json").read_text()),
               "howto world": json.loads((ROOT / "benchmarks/results/ablations_howto.json").read_text())}
    assert ablations.relative_table(results) in (ROOT / document).read_text(), (
        f"{document}: the Table 7 comparison differs from the committed results; print it with python "
        "benchmarks/ablations.py --relative 'teaching world=benchmarks/results/ablations.json' "
        "'howto world=benchmarks/results/ablations_howto.json'")


def test_howto_tables_are_the_committed_result():
    ablations = _script("ablations")
    payload = json.loads((ROOT / "benchmarks/results/ablations_howto.json").read_text())
    text = (ROOT / "docs/pretraining.md").read_text()
    assert ablations.markdown_table(payload) in text, (
        "docs/pretraining.md: the howto table differs; print it with python benchmarks/ablations.py --table "
        "benchmarks/results/ablations_howto.json")
    assert payload["settings"]["world_preset"] == "howto" and len(payload["settings"]["seeds"]) >= 5
    assert ablations.mechanism_table(payload) in text, (
        "docs/pretraining.md: the group hardness table differs from benchmarks/results/ablations_howto.json")
