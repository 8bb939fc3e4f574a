"""Fine-tuning on the shared loop: task hooks (a toy task), streamed epochs, the reference's data (F1-F4), resume."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from vclip.errors import DataFormatError
from vclip.tasks.common import pad_clip
from vclip.tasks.training import EpochBatches, PairFinetuning, load_split, same_video_pairs
from vclip.tokenizer import build_text_batch

REPO = Path(__file__).resolve().parents[1]
OFFLINE_ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def tiny_init(tmp_path_factory):
    from vclip.model import VideoCLIP

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("init") / "tiny"
    VideoCLIP.from_preset("tiny").save_pretrained(folder)
    return folder


# ---------------------------------------------------------------------------------------- hooks
def test_no_library_module_branches_on_a_task_name():
    """Outside a task's own module, every task fact is read through TASKS[task] (its hooks), never by its name:
    no `== "coin"`, `in ("youcook2", ...)` or `"coin": ...` table anywhere else in the package."""
    import re

    names = "youcook2|msrvtt|msrvtt_qa|coin|crosstask|didemo"
    branch = re.compile(rf"""(==|!=|\bin)\s*\(?\s*["']({names})["']|^\s*["']({names})["']\s*:""")
    task_modules = {"coin.py", "crosstask.py", "didemo.py", "qa.py", "retrieval.py"}
    checked = 0
    for path in sorted((REPO / "vclip").rglob("*.py")):
        if path.parent.name == "tasks" and path.name in task_modules:
            continue
        if path.parent.name == "synthetic":  # the world's generator writes each dataset's files, by its name
            continue
        checked += 1
        hits = [line.strip() for line in path.read_text().splitlines() if branch.search(line)]
        assert not hits, f"{path.relative_to(REPO)} branches on a task's name: {hits}"
    assert checked > 40


def test_a_toy_task_fine_tunes_with_one_module_and_one_registration(synthetic_world, tiny_init, tmp_path, capsys):
    """A new task is its class and its hooks; the recipe files, the program and the loop need no edit."""
    from vclip.finetune import main as finetune_main
    from vclip.tasks.registry import register_task, unregister_task
    from vclip.tasks.retrieval import YouCook2, youcook_training_split
    from vclip.training.finetuned import finetune_tasks, load_finetuned
    from vclip.training.finetuning import recipe

    class SymmetricFinetuning(PairFinetuning):
        loss_name = "symmetric_info_nce"

        def loss(self, model, head, batch):
            from vclip.loss import contrastive_loss

            video = model.encode_video(batch["vfeats"], batch["vmask"])
            text = model.encode_text(batch["input_ids"], batch["attention_mask"])
            return contrastive_loss(video, text)

    def reader(folder, split, val_fraction, seed):
        data = youcook_training_split(folder, split, val_fraction, seed)
        data.task, data.source = "toy_clips", "training list: the toy's, " + data.source
        return data

    class ToyClips(YouCook2):
        name = "toy_clips"
        title = "toy clips (YouCook2's files, a symmetric loss)"
        paper = ()
        finetuning = SymmetricFinetuning("toy_clips", reader, "text_to_video")

    register_task(ToyClips)
    try:
        assert "toy_clips" in finetune_tasks()
        config = recipe("toy_clips", "paper", batch_size=32)
        assert (config.batches, config.epochs, config.lr) == ("fixed", 10, 5e-5)  # the file's shared settings
        run = tmp_path / "toy"
        assert finetune_main(["--task", "toy_clips", "--init", str(tiny_init), "--data",
                              str(synthetic_world / "youcook2"), "--output", str(run), "--epochs", "1",
                              "--batch-size", "32", "--no-progress"]) == 0
        out = capsys.readouterr().out
        assert "training list: the toy's" in out
        model, head, summary = load_finetuned(run)
        assert summary["loss"] == "symmetric_info_nce" and head is None and summary["test"]["metrics"]["R@1"] >= 0
    finally:
        unregister_task("toy_clips")


# ---------------------------------------------------------------------------------------- streamed epochs
def _old_random_epoch(split, config, epoch, rank=0, world=1):
    """The batches ``Batches.epoch`` built before it streamed (random items), as (rows, captions)."""
    order = np.tile(np.arange(len(split)), config.dup)
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 1, epoch]))
    order = order[rng.permutation(len(order))]
    size = min(config.batch_size, len(order))
    out = []
    for b, start in enumerate(range(0, len(order), size)):
        if b % world != rank:
            continue
        items = order[start:start + size]
        if len(items) < 2:
            continue
        out.append((items, [split.captions[i][int(rng.integers(len(split.captions[i])))] for i in items]))
    return out


def _tuner(task, world, init, output, **overrides):
    from vclip.training.finetuning import FineTuner, recipe

    return FineTuner(recipe(task, init=str(init), data=str(world), output=str(output), device="cpu",
                            progress=False, **overrides))


def test_the_epoch_is_streamed_and_random_mode_keeps_the_old_batches(synthetic_world, tiny_init, tmp_path):
    tuner = _tuner("msrvtt", synthetic_world, tiny_init, tmp_path / "run", batches="random", dup=3, batch_size=16)
    batches = tuner.train_batches.epoch(1, rank=1, world=2)
    assert isinstance(batches, EpochBatches) and isinstance(iter(batches), types.GeneratorType)
    assert all(isinstance(items, np.ndarray) for items, _ in batches.plans)  # the plan holds indices, no tensor
    old = _old_random_epoch(tuner.train_split, tuner.cfg, 1, rank=1, world=2)
    assert len(batches) == len(old)
    split, tokens = tuner.train_split, tuner.train_batches.tokens
    for built, (items, captions) in zip(batches, old):
        expected = torch.from_numpy(np.stack([pad_clip(split.clips[split.keys[i]])[0] for i in items]))
        assert torch.equal(built["vfeats"], expected)

        assert torch.equal(built["input_ids"], build_text_batch([tokens[c] for c in captions])[0])


def test_fixed_batches_are_consecutive_slices_in_a_new_order_each_epoch(synthetic_world, tiny_init, tmp_path):
    """F1: the reference's batches (fairseq over a list-order dataset): fixed slices of the dup-tiled list."""
    tuner = _tuner("youcook2", synthetic_world, tiny_init, tmp_path / "run", batches="fixed", batch_size=16)
    n = len(tuner.train_split)
    epochs = [tuner.train_batches.epoch(e) for e in (0, 1)]
    for batches in epochs:
        for items, _ in batches.plans:
            assert np.array_equal(items, np.arange(items[0], items[0] + len(items)) % n)
    slices = [[tuple(items) for items, _ in b.plans] for b in epochs]
    assert sorted(slices[0]) == sorted(slices[1]) and slices[0] != slices[1]  # the same batches, reordered
    # same-video pairs are counted in both modes; a YouCook2 list keeps a video's clips together
    fixed = sum(epochs[0].same_video_pairs)
    randomised = sum(tuner.hooks.batches(tuner.train_split, _replace(tuner.cfg, batches="random"), {}, 0,
                                         plan_only=True).same_video_pairs)
    keys = tuner.train_split.keys
    assert fixed == sum(same_video_pairs([keys[i][0] for i in items]) for items, _ in epochs[0].plans)
    assert fixed > randomised > 0


def _replace(config, **values):
    import dataclasses

    return dataclasses.replace(config, **values)


def test_same_video_pairs_by_hand():
    assert same_video_pairs(["a", "a", "b", "a"]) == 3 and same_video_pairs(["a", "b"]) == 0


# ---------------------------------------------------------------------------------------- F2-F4
def test_the_hold_out_applies_only_to_select_val(synthetic_world, tiny_init, tmp_path):
    """F2: --select test and last train on every training video, as the reference."""
    folder = synthetic_world / "youcook2"
    every = load_split("youcook2", folder, "train", val_fraction=0.0)
    held = load_split("youcook2", folder, "train", val_fraction=0.1)
    assert len(every) > len(held)
    for select in ("test", "last"):
        tuner = _tuner("youcook2", synthetic_world, tiny_init, tmp_path / select, select=select)
        assert tuner.val_split is None and len(tuner.train_split) == len(every)
    assert len(_tuner("youcook2", synthetic_world, tiny_init, tmp_path / "val").train_split) == len(held)


def _csv(path, rows):
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def test_msrvtt_9k_is_train_plus_full_test_outside_1k_a(tmp_path):
    """F3: MSRVTT_train.csv + the MSRVTT_FULL_test.csv videos outside the JSFusion 1k-A test, said in one line."""
    from vclip.tasks.retrieval import msrvtt_training_list

    _csv(tmp_path / "MSRVTT_JSFUSION_test.csv", [["key", "vid_key", "video_id", "sentence"],
                                                 ["ret0", "msr9", "video9", "a test"]])
    with pytest.raises(DataFormatError, match="MSRVTT_FULL_test.csv"):
        msrvtt_training_list(tmp_path)
    _csv(tmp_path / "MSRVTT_train.csv", [["video_id"], ["video0"], ["video1"]])
    listed, _, line = msrvtt_training_list(tmp_path)
    assert listed == ["video0", "video1"] and "MSRVTT_train.csv alone, 2 videos" in line and "not the" in line
    _csv(tmp_path / "MSRVTT_train.9k.csv", [["video_id"], ["video0"], ["video1"], ["video7"]])
    listed, _, line = msrvtt_training_list(tmp_path)
    assert listed == ["video0", "video1", "video7"] and line.startswith("training list: MSRVTT_train.9k.csv, 3 videos")
    _csv(tmp_path / "MSRVTT_FULL_test.csv", [["video_id"], ["video7"], ["video8"], ["video9"]])
    listed, _, line = msrvtt_training_list(tmp_path)
    assert listed == ["video0", "video1", "video7", "video8"]  # video9 is in the 1k-A test
    assert "MSRVTT_train.csv (2 videos) + 2 videos of MSRVTT_FULL_test.csv outside the 1k-A test = 4 videos" in line


@pytest.mark.slow
def test_select_test_keeps_the_lowest_test_loss_epoch_for_coin(synthetic_world, tiny_init, tmp_path):
    """F4: COIN (and CrossTask) keep checkpoint_best, the epoch of lowest loss on the test split; the
    other tasks score every epoch on the test metrics."""
    from vclip.training.finetuning import finetune, recipe

    summary = finetune(recipe("coin", init=str(tiny_init), data=str(synthetic_world), output=str(tmp_path / "coin"),
                              epochs=2, select="test", device="cpu", progress=False)).summary
    losses = [e["test_loss"] for e in summary["epochs"]]
    assert summary["val_split"] == "test" and all("test" not in e for e in summary["epochs"])
    assert summary["selected_epoch"] == 1 + int(np.argmin(losses)) and "checkpoint_best" in summary["selection_note"]
    assert summary["val_items"] == len(load_split("coin", synthetic_world / "coin", "test"))
    summary = finetune(recipe("msrvtt_qa", init=str(tiny_init), data=str(synthetic_world),
                              output=str(tmp_path / "qa"), epochs=2, select="test", device="cpu",
                              progress=False)).summary
    scores = [e["test"]["metrics"]["accuracy"] for e in summary["epochs"]]
    assert summary["val_split"] is None and summary["selected_epoch"] == 1 + int(np.argmax(scores))
    assert summary["test"]["metrics"]["accuracy"] == max(scores) and "predict.py" in summary["selection_note"]


# ---------------------------------------------------------------------------------------- resume, precision
def _program(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vclip.finetune", *args], capture_output=True, text=True, cwd=REPO,
                          env=OFFLINE_ENV, timeout=600)


@pytest.mark.slow
def test_resume_through_the_command_line_equals_the_uninterrupted_run(synthetic_world, tiny_init, tmp_path):
    common = ["--task", "msrvtt_qa", "--init", str(tiny_init), "--data", str(synthetic_world), "--no-progress",
              "--total-num-update", "1000", "--select", "last", "--batch-size", "64", "--dup", "1"]
    straight = _program(*common, "--output", str(tmp_path / "straight"), "--epochs", "2")
    assert straight.returncode == 0, straight.stderr
    first = _program(*common, "--output", str(tmp_path / "resumed"), "--epochs", "1")
    assert first.returncode == 0, first.stderr
    again = _program(*common, "--output", str(tmp_path / "resumed"), "--epochs", "2")
    assert again.returncode == 2 and "--resume" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    resumed = _program(*common, "--output", str(tmp_path / "resumed"), "--epochs", "2", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    a, b = (json.loads((tmp_path / name / "finetune.json").read_text()) for name in ("straight", "resumed"))
    assert b["updates"] == a["updates"] and [e["epoch"] for e in b["epochs"]] == [1, 2]
    assert [e["train_loss"] for e in b["epochs"]] == pytest.approx([e["train_loss"] for e in a["epochs"]], abs=1e-6)
    assert b["test"]["metrics"] == pytest.approx(a["test"]["metrics"], abs=1e-6)
    changed = _program(*common, "--output", str(tmp_path / "resumed"), "--epochs", "3", "--resume", "--lr", "1e-3")
    assert changed.returncode == 2 and "lr" in changed.stderr


def test_bf16_autocast_runs_the_fine_tuning_update_on_a_cpu(synthetic_world, tiny_init, tmp_path):
    """--precision bf16 reaches the shared update's autocast: the loss differs from float32's, slightly."""
    losses = {}
    for precision in ("fp32", "bf16"):
        tuner = _tuner("msrvtt_qa", synthetic_world, tiny_init, tmp_path / precision, precision=precision,
                       batch_size=8)
        assert tuner.update.autocast_dtype == (torch.bfloat16 if precision == "bf16" else None)
        losses[precision] = tuner.train_step(tuner.train_batches.epoch(0)[0])["loss"]
    assert np.isfinite(losses["bf16"]) and losses["bf16"] != losses["fp32"]
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05)
