"""The task registry: one registration makes a task visible to evaluation, the data check and the tables;
evaluation reads every feature file once per task."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from vclip.data.__main__ import main as data_main
from vclip.data.check import check_videos
from vclip.evaluate import main as evaluate_main
from vclip.model import VideoCLIP
from vclip.tasks import (
    TASKS,
    EvalConfig,
    PaperNumber,
    Task,
    TaskResult,
    evaluate_all,
    evaluate_with_baselines,
    register_task,
)
from vclip.tasks.check import check_path, detect_layout, layouts
from vclip.tasks.common import encode_clips_once, eval_mode
from vclip.tasks.registry import unregister_task
from vclip.tasks.report import format_table

FAST = EvalConfig(batch_size=16, progress=False, baseline_repeats=2)


@dataclass
class ToySet:
    folder: Path
    video_ids: list[str]
    clips: dict
    missing: list[str]

    def result(self, scorer: str) -> TaskResult:
        n_items = len(self.video_ids) + len(self.missing)
        return TaskResult.start("toy_norm", scorer, self.folder, n_items, len(self.video_ids), self.missing)


class ToyNorm(Task):
    """A toy task: the share of videos whose pooled embedding has a positive first coordinate."""

    name = "toy_norm"
    title = "toy: sign of the first embedding coordinate"
    markers = ("toy.json",)
    metrics = ("positive",)
    paper = (PaperNumber("toy_norm", "zero-shot", "positive", 50.0, "no table (a toy)"),)

    def load(self, folder, config, features):
        ids = json.loads((Path(folder) / "toy.json").read_text())
        present = [v for v in ids if v in features]
        return ToySet(Path(folder), present, {v: features.features(v) for v in present},
                      [v for v in ids if v not in features])

    def n_evaluable(self, data):
        return len(data.video_ids)

    def score(self, model, data, config):
        with eval_mode(model):
            pooled = encode_clips_once(model, data.video_ids, data.clips, config)
        result = data.result("model")
        result.metrics = {"positive": float((pooled[:, 0] > 0).double().mean() * 100)}
        return result

    def chance(self, data, config):
        result = data.result("chance")
        result.metrics = {"positive": 50.0}
        return result

    def check(self, report, path, features_dir, check_values):
        ids = json.loads((path / "toy.json").read_text())
        seconds = check_videos(report, features_dir, ids, check_values)
        report.usable_items = len(seconds)


@pytest.fixture
def toy_task():
    register_task(ToyNorm)
    yield TASKS["toy_norm"]
    unregister_task("toy_norm")


@pytest.fixture
def toy_world(tmp_path):
    folder = tmp_path / "world" / "toy_norm"
    (folder / "features").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(5):
        np.save(folder / "features" / f"v{k}.npy", rng.standard_normal((8, 512)).astype(np.float16))
    (folder / "toy.json").write_text(json.dumps([f"v{k}" for k in range(6)]))  # v5 has no features
    return tmp_path / "world"


def test_a_registered_toy_task_shows_up_in_evaluation_check_and_tables(toy_task, toy_world, capsys):
    folder = toy_world / "toy_norm"
    assert "toy_norm" in layouts() and detect_layout(folder) == "toy_norm"
    (report,) = check_path(folder)
    assert report.layout == "toy_norm" and report.usable and report.missing_features == ["v5"]
    assert data_main(["check", str(folder), "--layout", "toy_norm"]) == 0

    torch.manual_seed(0)
    model = VideoCLIP.from_preset("tiny").eval()
    results = evaluate_all(model, toy_world, config=FAST)
    assert list(results) == ["toy_norm"]  # the built-in tasks have no folder here
    model_result = results["toy_norm"]["model"]
    assert model_result.n_evaluated == 5 and model_result.n_missing_features == 1
    assert 0.0 <= model_result.metrics["positive"] <= 100.0
    table = format_table(results)
    assert "toy_norm" in table and "50.0" in table  # the paper column comes from the registration
    capsys.readouterr()

    assert evaluate_main(["--task", "toy_norm", "--untrained", "tiny", "--data", str(folder), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "toy_norm  positive" in out and "toy_norm: 1 of 6 items have no feature file" in out


def test_registration_is_checked(toy_task):
    with pytest.raises(ValueError, match="already registered"):
        register_task(ToyNorm)

    class Nameless(Task):
        title, markers, metrics = "x", ("x",), ("m",)

    with pytest.raises(TypeError, match="must set 'name'"):
        register_task(Nameless)

    class WrongNumber(ToyNorm):
        name = "wrong"
        paper = (PaperNumber("wrong", "zero-shot", "R@1", 1.0, "a table"),)

    with pytest.raises(ValueError, match="a metric outside"):
        register_task(WrongNumber)
    with pytest.raises(ValueError, match="unknown task 'nope'; expected one of youcook2"):
        TASKS["nope"]


def test_builtin_registry_knows_every_task_once():
    assert list(TASKS) == ["youcook2", "msrvtt", "msrvtt_qa", "didemo", "crosstask", "coin"]
    for task in TASKS.values():
        assert task.metrics and task.markers and task.title
        assert task.finetuning is None or task.finetuning.task_name == task.name
        for number in task.paper:
            assert number.task == task.name and number.metric in task.metrics and number.table
    assert TASKS["youcook2"].paper_number("R@1").value == 22.7
    assert TASKS["youcook2"].paper_number("R@1", "fine-tuned").value == 32.2
    assert TASKS["msrvtt_qa"].paper_number("accuracy").format() == "73.9 (unconfirmed)"
    assert TASKS["didemo"].paper_number("mIoU") is None


@pytest.mark.parametrize("task", ["youcook2", "msrvtt_qa", "crosstask", "coin"])
def test_model_chance_and_oracle_read_each_feature_file_once(task, synthetic_world, monkeypatch):
    opened = []
    real_load = np.load

    def counting_load(file, *args, **kwargs):
        if str(file).endswith(".npy") and "features" in str(file):
            opened.append(Path(file).stem)
        return real_load(file, *args, **kwargs)

    monkeypatch.setattr(np, "load", counting_load)
    torch.manual_seed(0)
    model = VideoCLIP.from_preset("tiny").eval()
    results = evaluate_with_baselines(model, task, synthetic_world / task, FAST)
    assert set(results) == {"model", "chance", "oracle"}
    assert opened and len(opened) == len(set(opened))  # every file once, for all three scorers


def test_the_docs_table_of_tasks_is_the_registry():
    from vclip.tasks.registry import tasks_markdown

    docs = (Path(__file__).resolve().parents[1] / "docs" / "evaluation.md").read_text()
    assert tasks_markdown() in docs, "docs/evaluation.md: regenerate the table of tasks (see the command above it)"


def test_the_package_exports_what_a_notebook_needs():
    import vclip

    for name in vclip.__all__:
        assert getattr(vclip, name) is not None, name
    assert vclip.TASKS is TASKS and vclip.load_model.__module__ == "vclip.checkpoint"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        vclip.nope  # noqa: B018
