"""Hub model folders (vclip.hub) and TensorBoard event files (vclip.tensorboard_log) of real runs.

A two-step pre-training run (random arrays, a zero-shot YouCook2 evaluation of the synthetic world at
step 2, TensorBoard on) and a one-epoch COIN fine-tuning run are exported with ``python -m vclip.hub``
and loaded back: every tensor equal, the card carrying the run's evaluation table; the event file read
back with TensorBoard's own reader holds metrics.jsonl's values under the expected tags.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vclip.config import PretrainConfig
from vclip.training.pretraining import pretrain

REPO = Path(__file__).resolve().parents[1]
OFFLINE_ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def run_program(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO, env=OFFLINE_ENV,
                          timeout=timeout)


def event_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the TensorBoard event files under ``folder``, read with TensorBoard's EventAccumulator."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.fixture(scope="module")
def pretrain_run(tmp_path_factory, random_videos, synthetic_world) -> Path:
    store = random_videos(24)
    run = tmp_path_factory.mktemp("hub") / "pretrain"
    config = PretrainConfig(output=str(run), preset="tiny", videos_per_group=4, clips_per_video=4, lr=1e-3,
                            warmup_updates=2, log_every=1, progress=False, device="cpu", steps=2, eval_every=2,
                            eval_data=str(synthetic_world), eval_task="youcook2", tensorboard=True)
    pretrain(config, data=(store, store.video_ids[:20], store.video_ids[20:]))
    return run


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_two_step_run_writes_tensorboard_events_that_read_back(pretrain_run):
    scalars = event_scalars(pretrain_run / "tensorboard")
    records = _records(pretrain_run)
    train = [r for r in records if r["kind"] == "train"]
    assert [step for step, _ in scalars["train/loss"]] == [1, 2]
    for tag in ("loss", "loss_video_to_text", "loss_text_to_video", "lr", "grad_norm"):
        assert [v for _, v in scalars[f"train/{tag}"]] == pytest.approx([r[tag] for r in train], rel=1e-6), tag
    for record in train:  # the two directions add up to the loss (vclip.loss.contrastive_loss)
        assert record["loss_video_to_text"] + record["loss_text_to_video"] == pytest.approx(record["loss"], rel=1e-5)
    val = [r for r in records if r["kind"] == "val"]
    assert scalars["val/val_loss"][-1] == (2, pytest.approx(val[-1]["val_loss"], rel=1e-6))
    evaluation = next(r for r in records if r["kind"] == "eval")
    assert scalars["eval/youcook2/R@1"] == [(2, pytest.approx(evaluation["metrics"]["R@1"], rel=1e-6))]
    plan = next(r for r in records if r["kind"] == "epoch_plan")
    assert scalars["epoch_plan/retrieval/num_groups"][0][1] == plan["retrieval"]["num_groups"]


def test_a_pretraining_run_exports_to_a_hub_folder_bit_for_bit(pretrain_run, tmp_path):
    from vclip.checkpoint import load_model

    out = tmp_path / "vclip-pretrained"
    done = run_program("vclip.hub", str(pretrain_run), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    best = (pretrain_run / "checkpoints" / "BEST").read_text().strip()
    saved = load_file(pretrain_run / "checkpoints" / best / "model.safetensors")
    for loaded in (load_model(out).state_dict(), load_file(out / "model.safetensors")):
        assert sorted(loaded) == sorted(saved)
        assert all(torch.equal(loaded[k], saved[k]) for k in saved)  # bit for bit
    card = (out / "README.md").read_text()
    evaluation = next(r for r in _records(pretrain_run) if r["kind"] == "eval")
    assert f"zero-shot youcook2 (step {evaluation['step']}, n={evaluation['n']})" in card
    for metric, value in evaluation["metrics"].items():  # the run's evaluation table, every row
        assert f"| {metric} | {value:.1f} |" in card, metric
    assert "@inproceedings{xu-etal-2021-videoclip" in card and "license: mit" in card and "## Licence" in card
    again = run_program("vclip.hub", str(pretrain_run), "--out", str(out))
    assert again.returncode == 2 and "--overwrite" in again.stderr and len(again.stderr.strip().splitlines()) == 1


def test_every_checkpoint_folder_is_a_hub_folder(pretrain_run):
    from vclip.model import VideoCLIP

    latest = pretrain_run / "checkpoints" / (pretrain_run / "checkpoints" / "LATEST").read_text().strip()
    assert {"README.md", "config.json", "model.safetensors"} <= {p.name for p in latest.iterdir()}
    model = VideoCLIP.from_pretrained(latest)  # through PyTorchModelHubMixin.from_pretrained
    saved = load_file(latest / "model.safetensors")
    assert all(torch.equal(model.state_dict()[k], saved[k]) for k in saved) and not model.training


def test_loading_stays_strict_and_safe(tmp_path):
    from vclip.model import VideoCLIP

    torch.manual_seed(0)
    VideoCLIP.from_preset("tiny").save_pretrained(tmp_path / "m")
    with pytest.raises(ValueError, match="strictly"):
        VideoCLIP.from_pretrained(tmp_path / "m", strict=False)
    (tmp_path / "m" / "model.safetensors").unlink()
    torch.save({}, tmp_path / "m" / "pytorch_model.bin")  # the mixin's pickle fallback is never used
    with pytest.raises(FileNotFoundError, match="model.safetensors is missing"):
        VideoCLIP.from_pretrained(tmp_path / "m")


@pytest.mark.parametrize("program", ["evaluate", "finetune"])
def test_a_hub_name_offline_is_one_line_saying_how_to_pass_a_folder(program, tmp_path, synthetic_world):
    name = "vclip-nobody/videoclip-never-published"
    if program == "evaluate":
        done = run_program("vclip.evaluate", "--task", "youcook2", "--checkpoint", name, "--data", str(tmp_path))
    else:
        done = run_program("vclip.finetune", "--task", "coin", "--init", name, "--data", str(synthetic_world),
                           "--output", str(tmp_path / "run"))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert name in lines[0] and "HF_HUB_OFFLINE=1" in lines[0] and "pass a local folder" in lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_a_finetuned_coin_model_exports_with_its_head_bit_for_bit(synthetic_world, tmp_path):
    from vclip.finetune import main as finetune_main
    from vclip.hub import main as hub_main
    from vclip.model import VideoCLIP
    from vclip.training.finetuned import load_finetuned

    torch.manual_seed(0)
    VideoCLIP.from_preset("tiny").save_pretrained(tmp_path / "init")
    run = tmp_path / "ft"
    assert finetune_main(["--task", "coin", "--init", str(tmp_path / "init"), "--data", str(synthetic_world),
                          "--output", str(run), "--epochs", "1", "--no-progress", "--tensorboard"]) == 0
    scalars = event_scalars(run / "tensorboard")
    epoch = next(r for r in _records(run) if r["kind"] == "epoch")
    assert scalars["epoch/val_loss"] == [(epoch["step"], pytest.approx(epoch["val_loss"], rel=1e-6))]
    assert "train/loss" in scalars and "train/grad_norm" in scalars

    out = tmp_path / "vclip-coin"
    assert hub_main([str(run), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "finetune.json", "head.json",
                                                     "head.safetensors", "model.safetensors"]
    model, head, summary = load_finetuned(out)
    folder = run / summary["checkpoint"]  # the selected checkpoint the run's finetune.json names
    for module, file in ((model, "model.safetensors"), (head, "head.safetensors")):
        saved, loaded = load_file(folder / file), module.state_dict()
        assert sorted(loaded) == sorted(saved) and all(torch.equal(loaded[k], saved[k]) for k in saved), file
    card = (out / "README.md").read_text()
    assert "fine-tuned on coin" in card
    for metric, value in summary["test"]["metrics"].items():
        if metric in ("frame_acc", "frame_acc_no_bg"):  # the fine-tuned column of the test table
            zero = summary["zero_shot_test"]["metrics"][metric]
            assert f"| {metric} | {value:.1f} | {zero:.1f} |" in card, metric
    assert "| frame_acc |" in (folder / "README.md").read_text()  # the run's own checkpoint carries the table too


def test_tensorboard_without_the_package_is_one_line(monkeypatch):
    import importlib.util

    from vclip.config import RunSection
    from vclip.errors import ConfigError
    from vclip.training.finetuning import recipe

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    for make in (lambda: RunSection(tensorboard=True), lambda: recipe("coin", tensorboard=True)):
        with pytest.raises(ConfigError, match=r"needs the tensorboard package.*pip install -e '\.\[tensorboard\]'") as info:
            make()
        assert "\n" not in str(info.value)
