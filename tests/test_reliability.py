"""What docs/reliability.md promises: nothing in a run directory runs code, one process owns a run,
resume keeps a run true to itself, saves are atomic, the data check names what it drops, and users'
mistakes give one line. Each test reproduces a case that failed before the guarantee existed."""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import small_config

import vclip
from vclip.checkpoint import load_model
from vclip.config import PretrainConfig
from vclip.errors import CheckpointError, RunDirError
from vclip.evaluate import main as evaluate_main
from vclip.pretrain import main as pretrain_main
from vclip.rundir import RunDir
from vclip.sampling import ArrayVideos
from vclip.training.pretraining import pretrain
from vclip.training.trainer import Trainer

VCLIP_DIR = str(Path(vclip.__file__).resolve().parent)


# ----------------------------------------------------------------------------------------- fixtures
def make_videos(n: int = 28, seed: int = 0) -> ArrayVideos:
    rng = np.random.default_rng(seed)
    videos = {}
    for i in range(n):
        t = int(rng.integers(20, 40))
        starts = np.sort(rng.uniform(0, t - 4, 6))
        tokens = [list(rng.integers(1000, 3000, int(rng.integers(2, 8)))) for _ in range(6)]
        videos[f"v{i:02d}"] = (rng.standard_normal((t, 512)).astype(np.float32), starts, starts + 3.0, tokens)
    return ArrayVideos(videos)


@pytest.fixture(scope="module")
def arrays():
    store = make_videos()
    return store, store.video_ids[:24], store.video_ids[24:]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, arrays) -> Path:
    """A finished two-update run (two checkpoints, BEST, metrics); copy it before changing it."""
    run = tmp_path_factory.mktemp("finished") / "run"
    pretrain(small_config(run), data=arrays)
    return run


def copy_run(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(run, target)
    return target


class Payload:
    """A pickle that would create ``marker`` when unpickled (what an attacker plants)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def plant(path: Path, marker: Path) -> None:
    if path.suffix == ".pt":
        torch.save({"step": 2, "optimizer": Payload(marker)}, path)
    else:
        path.write_bytes(pickle.dumps(Payload(marker)))


def assert_one_line(error: BaseException | str, *named: str) -> None:
    text = str(error).strip()
    assert "\n" not in text and "Traceback" not in text, text
    for name in named:
        assert name in text, (name, text)


# ----------------------------------------------------------------------------------------- security
RUN_FILES = ["config.json", "metrics.jsonl", "checkpoints/LATEST", "checkpoints/BEST",
             "checkpoints/step_000002/trainer_state.pt", "checkpoints/step_000002/model.safetensors",
             "checkpoints/step_000002/config.json"]


@pytest.mark.parametrize("name", RUN_FILES)
def test_a_payload_in_any_run_file_never_runs(finished_run, tmp_path, arrays, name, capsys, caplog):
    caplog.set_level("WARNING", logger="vclip.pretrain")
    run = copy_run(finished_run, tmp_path)
    marker = tmp_path / "pwned"
    plant(run / name, marker)
    # the readers of a run directory: the evaluate program and load_model (notebooks), then --resume
    code = evaluate_main(["--task", "youcook2", "--checkpoint", str(run), "--data", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err.strip()
    outcomes = []
    for attempt in (lambda: load_model(run), lambda: pretrain(small_config(run, steps=3, resume=True), data=arrays)):
        try:
            attempt()
            outcomes.append("ok")
        except (CheckpointError, RunDirError) as error:
            assert_one_line(error)
            outcomes.append(str(error))
    assert not marker.exists(), f"a payload in {name} ran"
    if name.endswith(("model.safetensors", "step_000002/config.json", "LATEST")):  # what loading a model reads
        assert code == 2 and err.splitlines()[-1].startswith("error: ") and "Traceback" not in err
        assert outcomes[0] != "ok" and Path(name).name in outcomes[0]
    if name.startswith("checkpoints/step_000002/"):  # --resume skips the newest checkpoint, naming the file
        skipped = " ".join(r.getMessage() for r in caplog.records if "skipped" in r.getMessage())
        assert outcomes[1] == "ok" and name in skipped and "resumed from" in skipped, skipped
    elif name in ("config.json", "checkpoints/LATEST"):
        assert outcomes[1] != "ok" and Path(name).name in outcomes[1]  # --resume refuses, naming the file


def test_latest_may_only_name_the_kits_checkpoints_inside_the_run(finished_run, tmp_path, arrays):
    run = copy_run(finished_run, tmp_path)
    elsewhere = tmp_path / "elsewhere" / "ckpt"
    shutil.copytree(run / "checkpoints" / "step_000002", elsewhere)  # a complete checkpoint outside the run
    for text in ("../../elsewhere/ckpt", "step_000002/../../../elsewhere/ckpt", str(elsewhere), "step_2", ""):
        (run / "checkpoints" / "LATEST").write_text(text + "\n")
        with pytest.raises(CheckpointError, match="LATEST") as refused:
            pretrain(small_config(run, steps=3, resume=True), data=arrays)
        assert_one_line(refused.value)
        with pytest.raises(CheckpointError, match="LATEST"):
            load_model(run)
    (run / "checkpoints" / "step_000009").symlink_to(elsewhere, target_is_directory=True)
    (run / "checkpoints" / "LATEST").write_text("step_000009\n")
    with pytest.raises(CheckpointError, match="does not resolve inside"):
        load_model(run)


def test_trainer_state_is_read_weights_only(finished_run):
    state = torch.load(finished_run / "checkpoints" / "step_000002" / "trainer_state.pt", weights_only=True)
    assert state["step"] == 2 and isinstance(state["torch_rng"], torch.Tensor)


# ----------------------------------------------------------------------------------------- ownership
def test_a_second_run_on_a_locked_directory_is_refused_before_writing(tmp_path, arrays):
    run = tmp_path / "run"
    with RunDir(run).lock():
        with pytest.raises(RunDirError, match="in use by pid") as refused:
            pretrain(small_config(run, seed=1, lr=5e-4), data=arrays)
        assert_one_line(refused.value, str(run))
        assert sorted(p.name for p in run.iterdir()) == [".lock"]  # nothing of the refused run was written
    assert not (run / ".lock").exists()
    result = pretrain(small_config(run), data=arrays)  # free again; the run releases the lock at the end
    assert result.final_step == 2 and not (run / ".lock").exists()
    assert json.loads((run / "config.json").read_text())["run"]["seed"] == 0


def test_the_lock_is_released_when_a_run_fails(tmp_path, arrays):
    run = tmp_path / "run"
    pretrain(small_config(run), data=arrays)
    with pytest.raises(FileExistsError):
        pretrain(small_config(run), data=arrays)
    assert not (run / ".lock").exists()


def test_a_lock_left_by_a_killed_process_is_stale(tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom vclip.rundir import RunDir\nRunDir(sys.argv[1]).lock()\n"
         "print('locked', flush=True)\ntime.sleep(60)", str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirError, match=f"pid {holder.pid} on"):
            RunDir(run).lock()
    finally:
        holder.kill()  # kill -9: no chance to remove its lock file
        holder.wait()
    assert (run / ".lock").exists()
    lock = RunDir(run).lock()  # the dead owner's lock is recognised and replaced
    assert json.loads((run / ".lock").read_text())["pid"] == os.getpid()
    lock.release()
    assert not (run / ".lock").exists()


def test_a_garbage_lock_file_is_refused_in_one_line_and_runs_nothing(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    marker = tmp_path / "pwned"
    plant(run / ".lock", marker)
    with pytest.raises(RunDirError, match="in use") as refused:
        RunDir(run).lock()
    assert_one_line(refused.value, ".lock")
    assert not marker.exists()
    old = time.time() - 60
    os.utime(run / ".lock", (old, old))  # an old unreadable lock that nobody holds: stale
    RunDir(run).lock().release()


# ----------------------------------------------------------------------------------------- resume
def test_resume_refuses_changed_settings_naming_them(finished_run, tmp_path, arrays):
    run = copy_run(finished_run, tmp_path)
    before = (run / "config.json").read_text()
    with pytest.raises(RunDirError) as refused:
        pretrain(small_config(run, steps=3, lr=0.5, seed=7, resume=True), data=arrays)
    assert_one_line(refused.value, "lr: 0.001 -> 0.5", "seed: 0 -> 7", "config.json")
    assert (run / "config.json").read_text() == before
    result = pretrain(small_config(run, steps=3, log_every=2, keep_last=3, resume=True), data=arrays)  # may change
    assert result.final_step == 3
    saved = json.loads((run / "config.json").read_text())
    assert saved["run"]["steps"] == 3 and saved["optimisation"]["lr"] == 1e-3 and saved["run"]["seed"] == 0


def test_resume_with_the_runs_own_config_file(finished_run, tmp_path, synthetic_world):
    run = tmp_path / "run"
    argv = ["--data", str(synthetic_world / "pretrain"), "--output", str(run), "--steps", "1", "--sampling.videos-per-group",
            "4", "--sampling.clips-per-video", "2", "--no-retrieval", "--no-progress", "--lr", "0.001"]
    assert pretrain_main(argv) == 0
    assert pretrain_main(["--config", str(run / "config.json"), "--resume", "--steps", "2"]) == 0
    assert (run / "checkpoints" / "LATEST").read_text().strip() == "step_000002"


def test_a_torn_metrics_line_does_not_block_resume(finished_run, tmp_path, arrays):
    run = copy_run(finished_run, tmp_path)
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write('{"kind": "train", "step": 3, "lo')  # killed mid-append
    result = pretrain(small_config(run, steps=3, resume=True), data=arrays)
    assert result.final_step == 3
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3]


def test_the_metrics_rewrite_is_atomic(tmp_path, monkeypatch):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    for step in (1, 2, 3):
        run.append_metrics({"kind": "train", "step": step})
    before = run.metrics_path.read_bytes()

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(RunDirError, match="No space left") as refused:
        run.metrics_until(2)
    assert_one_line(refused.value, "metrics.jsonl")
    assert run.metrics_path.read_bytes() == before and not list(run.path.glob("*.tmp"))


def test_a_full_disk_during_a_save_leaves_the_previous_checkpoint(tmp_path, arrays, monkeypatch):
    run = tmp_path / "run"
    real_save, calls = torch.save, []

    def save(obj, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            Path(path).write_bytes(b"half")  # half-written, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(RunDirError, match="No space left on device") as refused:
        pretrain(small_config(run, steps=2, save_every=1), data=arrays)
    assert_one_line(refused.value, ".tmp_step_000002")
    checkpoints = run / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["LATEST", "step_000001"]
    assert (checkpoints / "LATEST").read_text().strip() == "step_000001"
    monkeypatch.setattr(torch, "save", real_save)
    load_model(run)
    assert not (run / ".lock").exists()


# ----------------------------------------------------------------------------------------- users' mistakes
@pytest.mark.parametrize("flags,named", [(["--steps", "-5"], "steps"), (["--steps", "0"], "steps"),
                                         (["--run.keep-last", "0"], "keep_last"), (["--run.device", "bogus"], "device"),
                                         (["--epochs", "0"], "epochs")])
def test_meaningless_values_are_refused_in_one_line(flags, named, tmp_path, synthetic_world, capsys):
    run = tmp_path / "run"
    code = pretrain_main(["--data", str(synthetic_world / "pretrain"), "--output", str(run), "--no-progress", *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and named in err and len(err.splitlines()) == 1
    assert not run.exists()
    with pytest.raises(ValueError, match=named):
        PretrainConfig(**{named: int(flags[1]) if named != "device" else flags[1]})


def _truncated_pt(tmp_path: Path) -> Path:
    path = tmp_path / "best.pt"
    torch.save({"model": {"mmmodel.x": torch.zeros(1000)}}, path)
    path.write_bytes(path.read_bytes()[:300])
    return path


def _truncated_native(tmp_path: Path, run: Path) -> Path:
    folder = tmp_path / "native"
    shutil.copytree(run / "checkpoints" / "step_000002", folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    return folder


@pytest.mark.parametrize("case", ["missing", "empty folder", "run without checkpoint", "text file",
                                  "truncated .pt", "truncated native"])
def test_evaluate_checkpoint_mistakes_give_one_line(case, tmp_path, finished_run, capsys):
    (tmp_path / "data").mkdir()
    path = {"missing": lambda: tmp_path / "nowhere",
            "empty folder": lambda: tmp_path / "data",
            "run without checkpoint": lambda: (tmp_path / "run" / "checkpoints").mkdir(parents=True) or tmp_path / "run",
            "text file": lambda: (tmp_path / "notes.txt").write_text("hello\n") and tmp_path / "notes.txt",
            "truncated .pt": lambda: _truncated_pt(tmp_path),
            "truncated native": lambda: _truncated_native(tmp_path, finished_run)}[case]()
    code = evaluate_main(["--task", "youcook2", "--checkpoint", str(path), "--data", str(tmp_path / "data"),
                          "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and path.name in err, err


def test_evaluate_refuses_a_bogus_device(tmp_path, capsys):
    assert evaluate_main(["--task", "youcook2", "--untrained", "tiny", "--data", str(tmp_path),
                          "--device", "bogus"]) == 2
    assert "bogus" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------- progress and syncs
def test_no_progress_prints_a_line_per_log_interval(tmp_path, arrays, caplog):
    caplog.set_level("INFO", logger="vclip.pretrain")
    pretrain(small_config(tmp_path / "run", steps=4, log_every=2, save_every=100), data=arrays)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert [line.split()[1] for line in lines] == ["2/4", "4/4"]
    for word in ("loss", "lr", "pairs/s", "left"):
        assert all(word in line for line in lines), lines


TO_PYTHON = ("item", "tolist", "__float__", "__int__", "__bool__", "__index__")


def test_no_host_sync_per_step_except_at_log_intervals(tmp_path, arrays, monkeypatch):
    """Count tensor -> Python conversions made by the kit's code during the training loop's steps.

    On a GPU each is a host synchronisation. 24 videos / 4 per group = 6 updates per epoch, a 6-update
    run logs, validates and saves at step 6 only: steps 1-5 must convert nothing.
    """
    store, train_ids, _ = arrays
    trainer = Trainer(small_config(tmp_path / "run", steps=6, log_every=100, save_every=100),
                      data=(store, train_ids, []))
    seen: list[tuple[int, str, str]] = []
    planning = [False]

    def counting(name, original):
        def convert(self, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if caller.startswith(VCLIP_DIR) and not planning[0] and trainer.step < trainer.total_steps:
                seen.append((trainer.step, name, f"{Path(caller).name}:{sys._getframe(1).f_lineno}"))
            return original(self, *args, **kwargs)

        return convert

    original_plan = Trainer.plan_epoch

    def plan_epoch(self, epoch):  # once per epoch, not per step
        planning[0] = True
        try:
            return original_plan(self, epoch)
        finally:
            planning[0] = False

    monkeypatch.setattr(Trainer, "plan_epoch", plan_epoch)
    for name in TO_PYTHON:
        monkeypatch.setattr(torch.Tensor, name, counting(name, getattr(torch.Tensor, name)))
    result = trainer.fit()
    assert seen == [], f"host syncs in steps 1-5: {seen[:10]}"
    (train,) = [r for r in result.history if r["kind"] == "train"]
    assert train["step"] == 6 and np.isfinite(train["loss"]) and np.isfinite(train["grad_norm"])


def test_the_host_side_batch_check_names_the_video(tmp_path, arrays):
    store, train_ids, val_ids = arrays
    broken = {vid: (store.features(vid).copy(), *store.captions(vid)) for vid in store.video_ids}
    broken["v03"][0][5, 7] = np.nan
    trainer = Trainer(small_config(tmp_path / "run"), data=(ArrayVideos(broken), train_ids, val_ids))
    with pytest.raises(ValueError, match=r"videos \['v03'\]: features contain NaN"):
        trainer.batch_for(0, 0, [0, 1, 2, 3])


# ----------------------------------------------------------------------------------------- captions
def _pretrain_folder(root: Path, captions: dict[str, dict]) -> Path:
    (root / "features").mkdir(parents=True)
    for vid in captions:
        np.save(root / "features" / f"{vid}.npy", np.ones((20, 512), dtype=np.float32))
    (root / "raw_caption.json").write_text(json.dumps(captions))
    (root / "train.lst").write_text("\n".join(captions) + "\n")
    return root


def test_special_token_text_is_ordinary_words_in_training_and_evaluation():
    from vclip.tasks import EvalConfig
    from vclip.tasks.common import encode_texts_once
    from vclip.tokenizer import CLS_TOKEN_ID, PAD_TOKEN_ID, SEP_TOKEN_ID, encode_texts, tokenize_caption

    special = {CLS_TOKEN_ID, SEP_TOKEN_ID, PAD_TOKEN_ID, 100, 103}  # [UNK] 100, [MASK] 103
    for text in ("cut the [SEP] onion", "[CLS] stir [PAD] well", "add the [MASK]", "[unk] salt"):
        assert not special & set(tokenize_caption(text)), text
    ids, mask = encode_texts(["add [SEP] salt", "add salt"])
    assert (ids[0] == SEP_TOKEN_ID).sum() == 1 and ids[0, mask[0].sum() - 1] == SEP_TOKEN_ID
    torch.manual_seed(0)
    from vclip.model import VideoCLIP

    model = VideoCLIP.from_preset("tiny").eval()
    assert encode_texts_once(model, ["stir the [SEP] soup", "[MASK]"], EvalConfig(progress=False)).shape[0] == 2


def test_the_check_names_dropped_caption_rows_and_special_token_text(tmp_path):
    from vclip.tasks.check import check_path

    folder = _pretrain_folder(tmp_path / "pretrain", {
        "va": {"start": [0, 2, 5, 30], "end": [1, 4, 3, 31], "text": ["fine", " ", "backwards", "too late"]},
        "vb": {"start": [0, 1], "end": [1, 2], "text": ["cut [SEP] here", "a [MASK] word"]},
    })
    (report,) = check_path(folder)
    notes = "\n".join(report.notes)
    assert "1 captions: empty text (dropped): va row 1" in notes
    assert "1 captions: end before start (dropped): va row 2" in notes
    assert "1 captions: starts after the video ends (dropped): va row 3" in notes
    assert "2 captions spell special tokens ([MASK] x1, [SEP] x1)" in notes and "vb row 0, vb row 1" in notes
    assert report.usable
