"""Fine-tuning: each loss and head against a hand computation, the training-split readers, one CLI run per task."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from vclip.errors import DataFormatError
from vclip.tasks.heads import (
    SegmentationHead,
    localisation_loss,
    localisation_scores,
    segmentation_loss,
    text_to_video_loss,
    video_to_text_loss,
)
from vclip.tasks.retrieval import read_msrvtt_train
from vclip.tasks.training import validation_videos

TEXT = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
VIDEO = torch.tensor([[1.0, 1.0], [0.0, 1.0]])


def test_text_to_video_loss_by_hand():
    # text @ video.T = [[1, 0], [2, 2]]; row 0: -log(e / (e + 1)); row 1: -log(e^2 / (e^2 + e^2)) = log 2
    expected = (-math.log(math.e / (math.e + 1)) + math.log(2)) / 2
    assert text_to_video_loss(TEXT, VIDEO).item() == pytest.approx(expected, rel=1e-6)


def test_video_to_text_loss_by_hand():
    # video @ text.T = [[1, 2], [0, 2]]; row 0: -log(e / (e + e^2)); row 1: -log(e^2 / (1 + e^2))
    expected = (-math.log(math.e / (math.e + math.e ** 2)) - math.log(math.e ** 2 / (1 + math.e ** 2))) / 2
    assert video_to_text_loss(VIDEO, TEXT).item() == pytest.approx(expected, rel=1e-6)
    assert video_to_text_loss(VIDEO, TEXT).item() != pytest.approx(text_to_video_loss(TEXT, VIDEO).item())


def test_contrastive_losses_reject_mismatched_batches():
    with pytest.raises(ValueError, match=r"\(B, H\)"):
        text_to_video_loss(TEXT, VIDEO[:1])


def test_segmentation_head_and_loss_by_hand():
    head = SegmentationHead(hidden_size=2, num_labels=2)
    with torch.no_grad():
        head.classifier.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
        head.classifier.bias.copy_(torch.tensor([0.5, 0.0, 0.0]))
    states = torch.tensor([[[2.0, 0.0], [0.0, 0.0], [9.0, 9.0]]])  # (1 window, 3 seconds, H=2)
    logits = head(states)
    assert logits.shape == (1, 3, 3)
    assert logits[0, 0].tolist() == [0.5, 2.0, 0.0]
    targets = torch.tensor([[1, 0, -100]])  # the third second is padding
    # second 0: -log softmax([0.5, 2, 0])[1]; second 1: logits [0.5, 0, 0], -log softmax[0]
    first = -math.log(math.exp(2) / (math.exp(0.5) + math.exp(2) + 1))
    second = -math.log(math.exp(0.5) / (math.exp(0.5) + 2))
    assert segmentation_loss(logits, targets).item() == pytest.approx((first + second) / 2, rel=1e-6)


def test_segmentation_head_saves_and_loads(tmp_path):
    head = SegmentationHead(4, 3)
    head.save(tmp_path)
    loaded = SegmentationHead.load(tmp_path)
    assert torch.equal(loaded.classifier.weight, head.classifier.weight)
    with pytest.raises(FileNotFoundError, match="head"):
        SegmentationHead.load(tmp_path / "nowhere")


def test_segmentation_loss_needs_a_target():
    with pytest.raises(ValueError, match="ignored"):
        segmentation_loss(torch.zeros(1, 2, 3), torch.full((1, 2), -100))


def test_localisation_scores_and_bce_by_hand():
    states = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])  # (1, 3, 2)
    steps = torch.tensor([[2.0, 0.0], [0.0, -1.0]])  # K = 2
    scores = localisation_scores(states, steps)
    assert scores[0].tolist() == [[2.0, 0.0], [0.0, -1.0], [10.0, -5.0]]
    targets = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    mask = torch.tensor([[True, True, False]])  # the third second is padding

    def bce(z, y):
        p = 1 / (1 + math.exp(-z))
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))

    expected = (bce(2, 1) + bce(0, 0) + bce(0, 0) + bce(-1, 1)) / 4
    assert localisation_loss(scores, targets, mask).item() == pytest.approx(expected, rel=1e-6)


def test_validation_videos_is_seeded_and_order_free():
    ids = [f"v{i}" for i in range(20)]
    held = validation_videos(ids, 0.1, seed=3)
    assert len(held) == 2 and held == validation_videos(list(reversed(ids)), 0.1, seed=3)
    assert validation_videos(ids, 0.01) and len(validation_videos(ids, 0.01)) == 1
    with pytest.raises(ValueError, match="val_fraction"):
        validation_videos(ids, 1.0)


def _write_msrvtt(tmp_path, sentences):
    with open(tmp_path / "MSRVTT_train.9k.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["video_id"], ["video0"], ["video1"]])
    (tmp_path / "MSRVTT_data.json").write_text(json.dumps({"videos": [], "sentences": sentences}))
    return tmp_path / "MSRVTT_train.9k.csv", tmp_path / "MSRVTT_data.json"


def test_read_msrvtt_train(tmp_path):
    paths = _write_msrvtt(tmp_path, [{"sen_id": 0, "video_id": "video0", "caption": "a man cooks"},
                                     {"sen_id": 1, "video_id": "video1", "caption": "a dog runs"},
                                     {"sen_id": 2, "video_id": "video0", "caption": " a man stirs "},
                                     {"sen_id": 3, "video_id": "video9999", "caption": "a test video"}])
    assert read_msrvtt_train(*paths) == {"video0": ["a man cooks", "a man stirs"], "video1": ["a dog runs"]}


def test_read_msrvtt_train_names_a_video_without_caption(tmp_path):
    paths = _write_msrvtt(tmp_path, [{"sen_id": 0, "video_id": "video0", "caption": "a man cooks"}])
    with pytest.raises(DataFormatError, match="video1"):
        read_msrvtt_train(*paths)


def test_training_splits_are_disjoint_from_evaluation(synthetic_world):
    from vclip.tasks.training import load_split

    for task in ("youcook2", "msrvtt", "msrvtt_qa", "coin", "crosstask"):
        train = load_split(task, synthetic_world / task, "train")
        val = load_split(task, synthetic_world / task, "val")
        assert len(train) and len(val), task
        ids = (lambda s: {k[0] for k in s.keys}) if hasattr(train, "keys") else (lambda s: set(s.video_ids))
        assert not ids(train) & ids(val), task
        assert not train.notes or "left out" not in " ".join(train.notes), task


@pytest.fixture(scope="module")
def tiny_init(tmp_path_factory):
    from vclip.model import VideoCLIP

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("init") / "tiny"
    VideoCLIP.from_preset("tiny").save_pretrained(folder)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("task", ["youcook2", "msrvtt", "msrvtt_qa", "coin", "crosstask"])
def test_cli_run_per_task(task, synthetic_world, tiny_init, tmp_path, capsys):
    from vclip.evaluate import main as evaluate_main
    from vclip.finetune import main as finetune_main

    run = tmp_path / "run"
    argv = ["--task", task, "--init", str(tiny_init), "--data", str(synthetic_world), "--output", str(run),
            "--epochs", "1", "--no-progress"]
    assert finetune_main(argv) == 0
    out = capsys.readouterr().out
    assert "fine-tuned" in out and "zero-shot (init)" in out
    summary = json.loads((run / "finetune.json").read_text())
    assert summary["task"] == task and summary["selected_epoch"] == 1 and summary["test"]["metrics"]
    # the shared loop's checkpoints (step_XXXXXX with the trainer state, so --resume works): one epoch,
    # so LATEST and BEST both name the last one, the only one kept; no temporary folder, lock released
    kept = summary["checkpoint"].split("/")[-1]
    assert kept == f"step_{summary['updates']:06d}" and (run / summary["checkpoint"] / "model.safetensors").is_file()
    assert (run / summary["checkpoint"] / "trainer_state.pt").is_file()
    assert (run / summary["checkpoint"] / "head.safetensors").is_file() == (task == "coin")
    assert [(run / "checkpoints" / n).read_text() for n in ("LATEST", "BEST")] == [f"{kept}\n"] * 2
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["BEST", "LATEST", kept]
    assert summary["train_source"].startswith("training list:") and summary["train_source"] in out
    assert not (run / ".lock").exists()
    assert evaluate_main(["--task", task, "--checkpoint", str(run), "--data", str(synthetic_world / task),
                          "--no-progress", "--no-baselines"]) == 0
    table = capsys.readouterr().out
    assert "paper fine-tuned" in table and "zero-shot (init)" in table
    assert finetune_main(argv) == 2  # an existing run is refused with a one-line error
    assert "already holds a run" in capsys.readouterr().err


def test_cli_prints_the_resolved_recipe(capsys):
    from vclip.finetune import main as finetune_main

    assert finetune_main(["--task", "coin", "--config", "paper", "--epochs", "3", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["task"], printed["config"], printed["train_stride"], printed["epochs"], printed["lr"]) == \
        ("coin", "paper", 8, 3, 5e-5)  # the paper recipe of COIN, with the command line on top
    assert finetune_main(["--task", "msrvtt", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["config"], printed["batch_size"], printed["dup"]) == ("teaching", 64, 2)


@pytest.mark.parametrize("argv, message", [
    (["--task", "coin", "--epochs", "0"], "epochs must be >= 1, got 0"),
    (["--task", "youcook2", "--batch-size", "1"], "at least 2 clips"),
    (["--task", "coin", "--config", "big"], "--config must be one of paper, teaching, got 'big'"),
    (["--task", "coin"], "--init, --data, --output required"),
    (["--task", "coin", "--init", "a", "--data", "b", "--output", "c", "--device", "tpu"], "device"),
])
def test_cli_bad_values_are_one_line(argv, message, capsys):
    from vclip.finetune import main as finetune_main

    assert finetune_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_cli_requires_a_task(capsys):
    from vclip.finetune import main as finetune_main

    assert finetune_main(["--init", "a"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--task" in err and len(err.splitlines()) == 1


def test_a_locked_run_directory_is_refused_before_writing(synthetic_world, tiny_init, tmp_path, capsys):
    from vclip.finetune import main as finetune_main
    from vclip.rundir import RunDir

    run = tmp_path / "run"
    with RunDir(run).lock():  # another process owns it
        assert finetune_main(["--task", "crosstask", "--init", str(tiny_init), "--data", str(synthetic_world),
                              "--output", str(run), "--epochs", "1", "--no-progress"]) == 2
        assert "is in use by pid" in capsys.readouterr().err
        assert [p.name for p in run.iterdir()] == [".lock"]


def test_init_best_may_only_name_a_checkpoint_inside_the_run(tmp_path, tiny_init):
    import shutil

    from vclip.errors import CheckpointError
    from vclip.training.finetuned import resolve_init

    run = tmp_path / "pretrain"
    shutil.copytree(tiny_init, run / "checkpoints" / "step_000010")
    (run / "checkpoints" / "LATEST").write_text("step_000010\n")
    (run / "checkpoints" / "BEST").write_text("step_000010\n")
    assert resolve_init(run) == run / "checkpoints" / "step_000010"
    (run / "checkpoints" / "BEST").write_text("../../elsewhere\n")
    with pytest.raises(CheckpointError, match="BEST: expected the name of a checkpoint folder"):
        resolve_init(run)


def test_cli_bad_input_is_one_line(tmp_path, tiny_init, capsys):
    from vclip.finetune import main as finetune_main

    assert finetune_main(["--task", "coin", "--init", str(tiny_init), "--data", str(tmp_path / "none"),
                          "--output", str(tmp_path / "run")]) == 2
    assert "error:" in capsys.readouterr().err


def test_recipes():
    from vclip.training.finetuning import recipe

    paper = recipe("msrvtt", "paper")
    assert (paper.batch_size, paper.epochs, paper.dup, paper.lr, paper.warmup_updates, paper.clip_norm) == \
        (224, 10, 20, 5e-5, 122, 2.0)
    assert recipe("coin", "paper").train_stride == 8 and recipe("crosstask", "paper").train_stride == 16
    assert recipe("youcook2").config == "teaching"
    with pytest.raises(ValueError, match="select"):
        recipe("youcook2", select="best")
    assert np.isclose(recipe("msrvtt_qa", "paper").epochs, 5)


def test_init_from_the_reference_checkpoint_layout(tmp_path, tiny_init):
    """``--init checkpoint_best.pt`` (the reference's release: fp16 weights under "model", keys "mmmodel.")."""
    from vclip.checkpoint import load_model, save_mmpt_checkpoint
    from vclip.training.finetuned import load_init

    source = load_model(tiny_init)
    save_mmpt_checkpoint(source, tmp_path / "checkpoint_best.pt")
    model, resolved = load_init(tmp_path / "checkpoint_best.pt")
    assert resolved == tmp_path / "checkpoint_best.pt" and model.training
    weights, expected = model.state_dict(), source.state_dict()
    assert weights.keys() == expected.keys()
    assert all(torch.allclose(weights[k].float(), expected[k].float(), atol=1e-2) for k in weights)  # fp16 copy


def test_finetuning_uses_pretrainings_precision_code(synthetic_world, tiny_init, tmp_path):
    """--precision bf16 runs the update under the autocast of vclip.training.update.Precision (CPU: bf16);
    the same first update in float32 gives a different loss, so the autocast is really on."""
    from vclip.errors import ConfigError
    from vclip.training.finetuning import FineTuner, recipe
    from vclip.training.update import Precision

    losses = {}
    for precision in ("fp32", "bf16"):
        config = recipe("coin", init=str(tiny_init), data=str(synthetic_world), output=str(tmp_path / precision),
                        epochs=1, device="cpu", precision=precision, progress=False)
        tuner = FineTuner(config)
        assert isinstance(tuner.precision, Precision)
        assert tuner.precision.dtype == (torch.bfloat16 if precision == "bf16" else None)
        batch = tuner.train_batches.epoch(0)[0]
        losses[precision] = tuner.train_step(batch)["loss"]
    assert math.isfinite(losses["bf16"]) and losses["bf16"] != losses["fp32"]
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05)
    with pytest.raises(ConfigError, match="fp16.*GPUs only"):
        Precision("fp16", torch.device("cpu"))
