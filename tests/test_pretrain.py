"""The trainer (vclip.pretrain): schedule, loss decreases, run directory, exact resume, the program."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vclip.config import PretrainConfig, load_recipe, parse_command_line
from vclip.errors import ConfigError
from vclip.pretrain import main
from vclip.training.pretraining import pretrain
from vclip.training.trainer import Trainer
from vclip.training.update import polynomial_decay


def small_config(run: Path, **overrides) -> PretrainConfig:
    values = dict(
        output=str(run), preset="tiny", videos_per_group=4, clips_per_video=4, lr=1e-3, warmup_updates=2,
        log_every=1, progress=False, device="cpu",
    )
    values.update(overrides)
    return PretrainConfig(**values)


@pytest.fixture(scope="module")
def arrays(random_videos):
    store = random_videos(24)
    return store, store.video_ids[:20], store.video_ids[20:]


def test_polynomial_decay_is_fairseqs():
    lrs = [polynomial_decay(s, 1000, 1_000_000, 5e-5) for s in (0, 1, 500, 1000, 1001, 1_000_000)]
    assert lrs[0] == lrs[1] == pytest.approx(5e-8)  # fairseq starts warm-up at peak / warmup
    assert lrs[2] == pytest.approx(2.5e-5) and lrs[3] == pytest.approx(5e-5)
    assert lrs[4] == pytest.approx(5e-5 * (1 - 1 / 999_000)) and lrs[5] == 0.0


def test_loss_decreases_over_a_few_steps(tmp_path, arrays):
    trainer = Trainer(small_config(tmp_path / "run", retrieval=False), data=arrays)
    batch = trainer.batch_for(0, 0, [0, 1, 2, 3])
    losses = [trainer.train_step(batch)["loss"] for _ in range(6)]
    assert losses[-1] < 0.5 * losses[0], losses


def test_run_directory_layout(tmp_path, arrays):
    run = tmp_path / "run"
    result = pretrain(small_config(run, steps=7, save_every=3), data=arrays)
    assert result.final_step == 7
    ckdir = run / "checkpoints"
    latest = (ckdir / "LATEST").read_text().strip()
    assert latest == "step_000007"
    for name in ("model.safetensors", "config.json", "trainer_state.pt"):
        assert (ckdir / latest / name).is_file()
    assert not list(ckdir.glob(".tmp_*"))
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    kinds = [r["kind"] for r in records]
    assert kinds.count("train") == 7 and kinds.count("epoch_plan") == 2  # 5 groups per epoch
    assert [r["step"] for r in records if r["kind"] == "val"] == [5, 7]  # epoch end and run end
    best = (ckdir / "BEST").read_text().strip()
    assert (ckdir / best).is_dir()  # the best-validation checkpoint is kept
    assert json.loads((run / "config.json").read_text())["run"]["steps"] == 7
    from vclip.model import VideoCLIP

    VideoCLIP.from_pretrained(ckdir / latest)  # a native checkpoint other programs can load
    with pytest.raises(FileExistsError, match="--resume"):
        pretrain(small_config(run, steps=7), data=arrays)


@pytest.mark.parametrize("retrieval", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_resume_equals_uninterrupted(tmp_path, arrays, retrieval):
    common = dict(retrieval=retrieval, total_num_update=7, save_every=100)
    full = pretrain(small_config(tmp_path / "full", steps=7, **common), data=arrays)
    pretrain(small_config(tmp_path / "cut", steps=3, **common), data=arrays)  # interrupted mid-epoch
    resumed = pretrain(small_config(tmp_path / "cut", steps=7, resume=True, **common), data=arrays)
    a = load_file(tmp_path / "full" / "checkpoints" / "step_000007" / "model.safetensors")
    b = load_file(tmp_path / "cut" / "checkpoints" / "step_000007" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    losses = lambda h: [(r["step"], r["loss"]) for r in h if r["kind"] == "train"]  # noqa: E731
    assert losses(resumed.history) == losses(full.history)
    plans = lambda run: [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())  # noqa: E731
                         if r["kind"] == "epoch_plan"]
    assert len(plans(tmp_path / "cut")) == len(plans(tmp_path / "full")) == 2


def test_data_order_depends_on_the_seed(tmp_path, arrays):
    a = Trainer(small_config(tmp_path / "a", seed=0), data=arrays).plan_epoch(0)[0]
    b = Trainer(small_config(tmp_path / "b", seed=0), data=arrays).plan_epoch(0)[0]
    c = Trainer(small_config(tmp_path / "c", seed=1), data=arrays).plan_epoch(0)[0]
    assert a == b and a != c
    assert all(len(g) == 4 for g in a) and len(a) == 5


def test_recipes_hold_only_differences_and_unknown_keys_are_refused(tmp_path):
    paper = load_recipe("paper")
    assert paper.videos_per_group * paper.clips_per_video == 512 and paper.epochs == 25
    assert paper.lr == 5e-5 and paper.warmup_updates == 1000 and paper.clip_norm == 2.0
    assert paper.model.init_from == "bert-base-uncased"
    assert (paper.retrieval.index, paper.retrieval.nprobe, paper.retrieval.shares) == ("ivf512", 1, "fixed")
    assert paper.run.val_at_save and paper.run.val_at_epoch_end and not paper.retrieval.top_up
    for name in ("paper", "teaching"):  # each file holds exactly what differs from the defaults
        on_disk = json.loads((Path("vclip/configs") / f"{name}.json").read_text())
        on_disk.pop("_comment")
        assert load_recipe(name).differences() == on_disk
    assert load_recipe("teaching").model.preset == "tiny" and load_recipe("teaching").steps == 150
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"optimisation": {"learning_rate": 1.0}}))
    with pytest.raises(ConfigError, match=r"bad.json: unknown setting optimisation.learning_rate"):
        load_recipe(bad)
    bad.write_text(json.dumps({"lr": 1.0}))
    with pytest.raises(ConfigError, match=r"bad.json: unknown section 'lr'"):
        load_recipe(bad)
    with pytest.raises(ConfigError, match="alignment"):
        PretrainConfig(alignment="aligned")
    with pytest.raises(ConfigError, match="not both"):
        PretrainConfig(steps=3, epochs=2)
    with pytest.raises(ConfigError, match="unknown setting 'stpes'"):
        PretrainConfig(stpes=3)


def test_command_line_overrides_the_recipe(tmp_path, capsys):
    bare = parse_command_line(["--data", "D", "--output", "O"]).settings
    assert bare == load_recipe("teaching").updated(data="D", output="O")  # the bare command: the teaching recipe
    paper = parse_command_line(["--config", "paper", "--steps", "2", "--lr", "1e-4", "--no-retrieval",
                                "--retrieval.index", "auto", "--sampling.text-min-tokens", "4"]).settings
    assert (paper.steps, paper.epochs, paper.lr, paper.retrieval.enabled) == (2, None, 1e-4, False)
    assert paper.retrieval.index == "auto" and paper.sampling.text_min_tokens == 4
    assert parse_command_line(["--config", "teaching", "--epochs", "2"]).settings.steps is None
    with pytest.raises(ConfigError, match="not both"):  # checked once on the resolved values: one line
        parse_command_line(["--steps", "2", "--epochs", "2"])
    assert main(["--config", "paper", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["retrieval"]["index"] == "ivf512" and printed["retrieval"]["nprobe"] == 1
    assert printed["retrieval"]["shares"] == "fixed" and printed["model"]["init_from"] == "bert-base-uncased"
    with pytest.raises(SystemExit):
        main(["--help"])
    helptext = capsys.readouterr().out
    for flag in ("--run.save-every", "--save-every", "--optimisation.temperature", "--retrieval.shares",
                 "--init-from", "--no-progress", "--print-config", "per_epoch", "ivf512"):
        assert flag in helptext, flag
    assert main(["--data", str(tmp_path / "nowhere"), "--output", str(tmp_path / "r"), "--no-progress"]) == 2


def test_program_on_the_synthetic_world(tmp_path, synthetic_world):
    run = tmp_path / "run"
    argv = ["--data", str(synthetic_world / "pretrain"), "--model.preset", "tiny", "--output", str(run), "--steps", "3",
            "--sampling.videos-per-group", "4", "--sampling.clips-per-video", "2", "--alignment", "exact",
            "--no-retrieval", "--no-progress", "--seed", "3", "--run.eval-every", "3", "--run.eval-data",
            str(synthetic_world)]
    assert main(argv) == 0
    assert (run / "checkpoints" / "LATEST").read_text().strip() == "step_000003"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["sampling"]["alignment"] == "exact" and cfg["retrieval"]["enabled"] is False and cfg["run"]["seed"] == 3
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert np.isfinite([r["loss"] for r in records if r["kind"] == "train"]).all()
    (evaluation,) = [r for r in records if r["kind"] == "eval"]
    assert evaluation["step"] == 3 and evaluation["task"] == "youcook2" and 0 <= evaluation["metrics"]["R@1"] <= 100


def test_rank_shares_are_fixed_as_the_reference_or_redrawn(tmp_path, arrays):
    fixed = Trainer(small_config(tmp_path / "a"), data=arrays)
    assert fixed.cfg.retrieval.shares == "fixed"  # the reference's DistributedSampler epoch is never set
    assert all(np.array_equal(a, b) for a, b in zip(fixed.plan.shares(0), fixed.plan.shares(3)))
    redrawn = Trainer(small_config(tmp_path / "b", shares="per_epoch"), data=arrays)
    assert not np.array_equal(redrawn.plan.shares(0)[0], redrawn.plan.shares(3)[0])


def test_validation_at_saves_and_epoch_ends_together(tmp_path, arrays):
    run = tmp_path / "run"
    pretrain(small_config(run, steps=8, save_every=3, val_at_save=True), data=arrays)  # 5 groups per epoch
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "val"] == [3, 5, 6, 8]  # saves 3, 6; epoch end 5; run end 8
    best = (run / "checkpoints" / "BEST").read_text().strip()
    assert (run / "checkpoints" / best).is_dir()


def test_a_training_step_runs_under_bf16_autocast_on_the_cpu(tmp_path, arrays):
    """The mixed-precision path (autocast around the forward, float32 loss) exercised without a GPU."""
    trainer = Trainer(small_config(tmp_path / "run", retrieval=False, precision="bf16"), data=arrays)
    assert trainer.update.autocast_dtype == torch.bfloat16
    seen = []
    linear = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Linear))
    hook = linear.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    before = [p.detach().clone() for p in trainer.model.parameters()]
    batch = trainer.batch_for(0, 0, [0, 1, 2, 3])
    record = trainer.train_step(batch)
    hook.remove()
    assert seen and set(seen) == {torch.bfloat16}  # the towers' matrix products ran in bf16
    assert torch.isfinite(record["loss"]) and record["loss"].dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # master weights stay float32
    changed = sum(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    assert changed > len(before) // 2
