"""Runs, resume and the programs' edges (docs/reliability.md, "Runs, resume and the programs' edges").

Nothing of a run is lost: a run another process owns is never removed, ``--resume`` never starts a run
over in place and continues the run the command names; nothing is silently wrong: a run without its
settings, a killed fine-tune, a BEST without weights are refused; and a user's mistake is one line from
every program (:mod:`vclip.cli`), checked through the command lines as well as the API. The data-loss
tests failed on the code before these guarantees.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import small_config

from vclip.errors import CheckpointError, RunDirError
from vclip.pretrain import main as pretrain_main
from vclip.rundir import RunDir
from vclip.training.pretraining import pretrain

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
SMALL = ["--steps", "2", "--save-every", "1", "--sampling.videos-per-group", "4", "--sampling.clips-per-video", "2",
         "--no-retrieval", "--no-progress", "--lr", "0.001", "--run.log-every", "1", "--run.device", "cpu", "--run.val-max-groups", "1"]


# ----------------------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def world(request) -> Path:
    """The default synthetic world: ``make data``'s copy when present, else the session's (read-only)."""
    made = REPO / "data" / "generated" / "synthetic"
    return made if (made / "WORLD.json").is_file() else request.getfixturevalue("synthetic_world")


def run_program(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m <args>`` as a user runs it."""
    return subprocess.run([sys.executable, "-m", *map(str, args)], capture_output=True, text=True, env=ENV,
                          timeout=timeout, cwd=REPO)


def assert_refused(done: subprocess.CompletedProcess, *named: str) -> str:
    """Status 2, one ``error:`` line on stderr naming ``named``, no traceback; returns the line."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and len(errors) == 1, done.stderr[-3000:]
    for name in named:
        assert name in errors[0], (name, errors[0])
    return errors[0]


def in_process(main, argv: list, capsys) -> subprocess.CompletedProcess:
    """``main(argv)`` in this process, its status and output as :func:`run_program` gives them (same edge)."""
    capsys.readouterr()
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(argv, status, out, err)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` and its bytes (to prove that nothing changed)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, world) -> Path:
    """A finished two-update run made by the command line (checkpoints step_000001 and step_000002)."""
    run = tmp_path_factory.mktemp("cli") / "run"
    done = run_program("vclip.pretrain", "--data", world / "pretrain", "--output", run, *SMALL)
    assert done.returncode == 0, done.stderr[-3000:]
    return run


def copy_of(run: Path, target: Path) -> Path:
    shutil.copytree(run, target)
    return target


@pytest.fixture(scope="module")
def arrays(random_videos):
    store = random_videos(n=28, seed=1)
    return store, store.video_ids[:24], store.video_ids[24:]


@pytest.fixture(scope="module")
def api_run(tmp_path_factory, arrays) -> Path:
    """A finished two-update run made through the API, on arrays (copy it before changing it)."""
    run = tmp_path_factory.mktemp("api") / "run"
    pretrain(small_config(run), data=arrays)
    return run


def hold_lock(run: Path) -> subprocess.Popen:
    """A live second process that owns ``run`` (as a running ``vclip.pretrain`` does)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom vclip.rundir import RunDir\nRunDir(sys.argv[1]).lock()\n"
         "print('locked', flush=True)\ntime.sleep(120)", str(run)], stdout=subprocess.PIPE, text=True, cwd=REPO, env=ENV)
    assert holder.stdout.readline().strip() == "locked"
    return holder


# ----------------------------------------------------------------------------------------- data loss
def test_teaching_run_never_removes_a_run_another_process_owns(tmp_path, world):
    from vclip.notebooks import teaching_run

    run = tmp_path / "runs" / "teaching"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text('{"kind": "train", "step": 1, "loss": 1.0}\n')  # a live run's first record
    holder = hold_lock(run)
    try:
        before = snapshot(run)
        with pytest.raises(RunDirError, match=f"in use by pid {holder.pid}"):
            teaching_run(world, tmp_path, steps=2, preset="tiny", videos_per_group=4, clips_per_video=2,
                         retrieval=False, progress=False)
        assert snapshot(run) == before and holder.poll() is None  # the owner's files and the owner are intact
    finally:
        holder.kill()
        holder.wait()


def test_teaching_run_retrains_a_stale_run_under_its_own_lock(tmp_path, world):
    from vclip.notebooks import FINGERPRINT_FILE, teaching_run

    run = tmp_path / "runs" / "teaching"
    run.mkdir(parents=True)
    (run / "left_over.txt").write_text("an earlier run without a fingerprint\n")
    settings = dict(steps=2, preset="tiny", videos_per_group=4, clips_per_video=2, retrieval=False, progress=False,
                    device="cpu", val_max_groups=1)
    assert teaching_run(world, tmp_path, **settings) == run
    assert not (run / "left_over.txt").exists() and (run / FINGERPRINT_FILE).is_file()
    assert (run / "checkpoints" / "LATEST").read_text().strip() == "step_000002" and not (run / ".lock").exists()
    before = snapshot(run)
    assert teaching_run(world, tmp_path, **settings) == run and snapshot(run) == before  # reused, not retrained


@pytest.mark.parametrize("state", ["no folder", "empty folder", "started, no checkpoint yet"])
def test_resume_without_a_checkpoint_is_refused_and_changes_nothing(state, tmp_path, world, cli_run, capsys):
    run = tmp_path / "run"
    if state != "no folder":
        run.mkdir()
    if state == "started, no checkpoint yet":  # killed before its first save: settings and early records
        shutil.copy(cli_run / "config.json", run / "config.json")
        shutil.copy(cli_run / "metrics.jsonl", run / "metrics.jsonl")
    before = snapshot(run) if run.exists() else None
    argv = ["--data", world / "pretrain", "--output", run, *SMALL, "--seed", "5", "--resume"]
    done = run_program("vclip.pretrain", *argv) if state == "started, no checkpoint yet" else in_process(pretrain_main, argv, capsys)
    assert_refused(done, "LATEST", "no run to resume", "without --resume")
    assert (snapshot(run) if run.exists() else None) == before


def test_resume_without_config_json_is_refused_and_keeps_the_run(tmp_path, api_run, arrays):
    run = copy_of(api_run, tmp_path / "run")
    (run / "config.json").unlink()
    before = snapshot(run)
    with pytest.raises(RunDirError, match="config.json is missing") as refused:
        pretrain(small_config(run, steps=3, lr=0.5, seed=7, resume=True), data=arrays)
    assert "\n" not in str(refused.value)
    assert snapshot(run) == before and not (run / ".lock").exists()


def test_resume_with_a_copys_config_continues_the_copy_not_the_original(tmp_path, cli_run, capsys):
    original = copy_of(cli_run, tmp_path / "original")
    done = in_process(pretrain_main, ["--config", original / "config.json", "--resume", "--steps", "3"], capsys)
    assert done.returncode == 0, done.stderr[-3000:]  # the kit's suggested command works on the run itself
    assert (original / "checkpoints" / "LATEST").read_text().strip() == "step_000003"
    copy = copy_of(original, tmp_path / "copy")
    before = snapshot(original)
    done = run_program("vclip.pretrain", "--config", copy / "config.json", "--resume", "--steps", "4")
    assert done.returncode == 0, done.stderr[-3000:]
    assert snapshot(original) == before  # the original named inside the file is untouched
    assert (copy / "checkpoints" / "LATEST").read_text().strip() == "step_000004"
    assert json.loads((copy / "config.json").read_text())["run"]["output"] == str(copy)
    done = in_process(pretrain_main, ["--config", copy / "config.json", "--output", original, "--resume"], capsys)
    assert_refused(done, str(copy), str(original), "--resume continues one run")
    assert snapshot(original) == before


# ----------------------------------------------------------------------------------------- silently wrong
def test_a_killed_fine_tune_is_not_evaluated_as_zero_shot(tmp_path, api_run, world):
    run = tmp_path / "ft"
    shutil.copytree(api_run / "checkpoints" / "step_000002", run / "checkpoints" / "epoch_001")
    (run / "checkpoints" / "LATEST").write_text("epoch_001\n")
    (run / "config.json").write_text(json.dumps({"task": "youcook2", "init": str(api_run), "epochs": 3}))
    done = run_program("vclip.evaluate", "--task", "youcook2", "--checkpoint", run, "--data", world / "youcook2",
                       "--no-progress", "--no-baselines")
    assert_refused(done, str(run), "did not finish", "finetune.json")
    assert "R@1" not in done.stdout


def test_best_naming_a_checkpoint_without_weights_is_refused(tmp_path, api_run):
    from vclip.training.finetuned import resolve_init

    run = copy_of(api_run, tmp_path / "run")
    best = (run / "checkpoints" / "BEST").read_text().strip()
    (run / "checkpoints" / best / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=f"BEST names {best}, but .* has no model.safetensors") as refused:
        resolve_init(run)
    assert "--init" in str(refused.value)


# ----------------------------------------------------------------------------------------- damaged checkpoints
@pytest.mark.parametrize("damaged", ["model.safetensors", "trainer_state.pt"])
def test_resume_skips_a_truncated_newest_checkpoint_saying_which(damaged, tmp_path, api_run, arrays, caplog):
    run = copy_of(api_run, tmp_path / "run")
    path = run / "checkpoints" / "step_000002" / damaged
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a copy cut short
    caplog.set_level(logging.WARNING, logger="vclip.pretrain")
    result = pretrain(small_config(run, steps=3, resume=True), data=arrays)
    assert result.final_step == 3
    warning = " ".join(r.getMessage() for r in caplog.records if "skipped" in r.getMessage())
    assert "step_000002" in warning and damaged in warning and "step_000001" in warning, warning
    steps = [r["step"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "train"]
    assert steps == [1, 2, 3]  # the records after the restored step were logged again, once
    assert (run / "checkpoints" / "LATEST").read_text().strip() == "step_000003"
    from vclip.checkpoint import load_model

    load_model(run / "checkpoints" / "step_000002")  # replaced by a whole checkpoint when training reached it again


def test_evaluating_a_run_whose_latest_is_truncated_is_refused_naming_an_older_one(tmp_path, api_run):
    from vclip.checkpoint import load_model

    run = copy_of(api_run, tmp_path / "run")
    weights = run / "checkpoints" / "step_000002" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError) as refused:
        load_model(run)
    message = str(refused.value)
    assert "\n" not in message and "step_000002" in message and str(run / "checkpoints" / "step_000001") in message


# ----------------------------------------------------------------------------------------- the programs' edges
def test_pretrain_refusals_inside_training_are_one_line(tmp_path, world, cli_run, capsys):
    """A locked run, a resume with other settings, a damaged metrics.jsonl: status 2, one line, no traceback."""
    data = ["--data", world / "pretrain"]
    locked = copy_of(cli_run, tmp_path / "locked")
    with RunDir(locked).lock():
        assert_refused(run_program("vclip.pretrain", *data, "--output", locked, *SMALL, "--resume"), "in use by pid")
    changed = copy_of(cli_run, tmp_path / "changed")
    assert_refused(in_process(pretrain_main, [*data, "--output", changed, *SMALL, "--seed", "3", "--resume"], capsys),
                   "config.json", "seed: 0 -> 3")
    damaged = copy_of(cli_run, tmp_path / "damaged")
    lines = (damaged / "metrics.jsonl").read_text().splitlines()
    (damaged / "metrics.jsonl").write_text("\n".join([lines[0], "not json", *lines[1:]]) + "\n")
    assert_refused(in_process(pretrain_main, [*data, "--output", damaged, *SMALL, "--resume"], capsys),
                   "metrics.jsonl", "line 2")


def test_resume_of_a_truncated_newest_checkpoint_through_the_program(tmp_path, cli_run):
    run = copy_of(cli_run, tmp_path / "run")
    state = run / "checkpoints" / "step_000002" / "trainer_state.pt"
    state.write_bytes(state.read_bytes()[:200])
    done = run_program("vclip.pretrain", "--config", run / "config.json", "--resume", "--steps", "3")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "skipped 1 damaged checkpoint" in done.stderr and "trainer_state.pt" in done.stderr


def test_every_program_reports_users_mistakes_through_the_one_edge():
    import importlib

    from vclip.cli import program

    for name in ("vclip.__main__", "vclip.pretrain", "vclip.finetune", "vclip.evaluate", "vclip.extract",
                 "vclip.data.__main__", "vclip.synthetic.__main__", "vclip.notebooks.__main__",
                 "vclip.hub"):
        main = importlib.import_module(name).main
        assert main.__code__ is program(lambda argv=None: 0).__code__, name  # wrapped by vclip.cli.program


def test_the_edge_is_one_line_for_a_mistake_and_a_traceback_for_a_bug(capsys):
    from vclip.cli import program
    from vclip.errors import ConfigError

    @program
    def refuses(argv=None):
        raise ConfigError("settings.json: lr: expected a number > 0, found -1")

    @program
    def missing(argv=None):
        open("/nonexistent-vclip-folder/file.json")

    @program
    def bug(argv=None):
        raise KeyError("a bug")

    assert refuses([]) == 2 and capsys.readouterr().err == "error: settings.json: lr: expected a number > 0, found -1\n"
    assert missing([]) == 2 and "/nonexistent-vclip-folder/file.json: No such file" in capsys.readouterr().err
    with pytest.raises(KeyError):
        bug([])


def test_python_m_vclip_info_runs(tmp_path):
    done = run_program("vclip", "info")
    assert done.returncode == 0 and "torch" in done.stdout and not done.stderr.count("Traceback")


# ----------------------------------------------------------------------------------------- fine-tuning runs
def _fake_finetuned_run(folder: Path, checkpoint: Path, init: str, **fields) -> Path:
    """A fine-tuning run directory as vclip.finetune leaves it (one selected epoch and its finetune.json)."""
    shutil.copytree(checkpoint, folder / "checkpoints" / "epoch_001")
    for pointer in ("LATEST", "BEST"):
        (folder / "checkpoints" / pointer).write_text("epoch_001\n")
    (folder / "config.json").write_text(json.dumps({"task": "youcook2", "init": init}))
    summary = {"task": "youcook2", "config": "teaching", "init": init, "init_checkpoint": init,
               "checkpoint": "checkpoints/epoch_001", "selection_note": "the last epoch (no selection)",
               "test": {"metrics": {}}, "zero_shot_test": {"metrics": {}}, **fields}
    (folder / "finetune.json").write_text(json.dumps(summary))
    return folder


@pytest.mark.parametrize("tamper, named", [
    (lambda path: path.write_text('{"task": "youcook2", '), "invalid JSON"),
    (lambda path: path.write_text(json.dumps({**json.loads(path.read_text()), "init_checkpoint": 7})),
     "init_checkpoint (str)"),
    (lambda path: path.write_text(json.dumps({**json.loads(path.read_text()), "task": "cooking"})), "task"),
])
def test_a_tampered_finetune_json_is_one_line(tamper, named, tmp_path, api_run, world):
    run = _fake_finetuned_run(tmp_path / "ft", api_run / "checkpoints" / "step_000002",
                              str(api_run / "checkpoints" / "step_000001"))
    tamper(run / "finetune.json")
    done = run_program("vclip.evaluate", "--task", "youcook2", "--checkpoint", run, "--data", world / "youcook2",
                       "--no-progress", "--no-baselines")
    assert_refused(done, "finetune.json", named)


def test_a_moved_fine_tuned_run_names_its_finetune_json_and_the_option(tmp_path, api_run, world, capsys):
    from vclip.evaluate import main as evaluate_main

    moved_init = tmp_path / "init_that_moved"
    run = _fake_finetuned_run(tmp_path / "ft", api_run / "checkpoints" / "step_000002", str(moved_init))
    argv = ["--task", "youcook2", "--checkpoint", str(run), "--data", str(world / "youcook2"), "--no-progress",
            "--no-baselines"]
    assert evaluate_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(moved_init) in err and "finetune.json" in err and "--init" in err, err
    assert evaluate_main([*argv, "--init", str(api_run / "checkpoints" / "step_000001")]) == 0
    assert "zero-shot (init)" in capsys.readouterr().out


def _bad_init(folder: Path, case: str) -> Path:
    from vclip.model import VideoCLIP

    torch.manual_seed(0)
    if case == "feature size":
        model = VideoCLIP.from_preset("tiny", video_feature_dim=1024)
    elif case == "vocabulary":
        model = VideoCLIP.from_preset("tiny", vocab_size=1000)
    else:
        model = VideoCLIP.from_preset("tiny")
        with torch.no_grad():
            next(model.parameters())[0] = math.nan
    model.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("case, named", [("feature size", "1024-d features"), ("vocabulary", "1000 tokens"),
                                         ("NaN weights", "NaN or inf")])
def test_a_bad_init_is_refused_before_the_run_directory_exists(case, named, tmp_path, world, capsys):
    from vclip.finetune import main as finetune_main

    init = _bad_init(tmp_path / "init", case)
    output = tmp_path / "ft"
    argv = ["--task", "crosstask", "--init", init, "--data", world, "--output", output, "--epochs", "1", "--no-progress"]
    done = run_program("vclip.finetune", *argv) if case == "NaN weights" else in_process(finetune_main, argv, capsys)
    assert_refused(done, f"--init {init}", named)
    assert not output.exists()


# ----------------------------------------------------------------------------------------- notebook parameters
def test_a_wrong_type_notebook_parameter_names_it_the_file_and_the_type(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("notebooks:\n  04_training_and_ablations:\n    train_steps: many\n")
    done = run_program("vclip.notebooks", "run", "--params", params, "--out", tmp_path / "out", "--only", "04")
    assert_refused(done, str(params), "train_steps", "'many'", "an integer")
    assert not (tmp_path / "out").exists()  # refused before any notebook ran


# ----------------------------------------------------------------------------------------- under torchrun
@pytest.mark.slow
@pytest.mark.distributed
def test_a_refusal_under_torchrun_ends_every_rank(tmp_path, world):
    """Rank 0 alone holds the lock, so rank 0 alone meets the refusal; the launcher ends rank 1, nobody hangs."""
    run = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
               "vclip.pretrain", "--data", str(world / "pretrain"), "--output", str(run), *SMALL]
    with RunDir(run).lock():
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=240, cwd=REPO)
        except subprocess.TimeoutExpired as expired:
            pytest.fail(f"torchrun did not finish within 240 s (a rank left waiting?): {str(expired.stderr)[-3000:]}")
        assert sorted(p.name for p in run.iterdir()) == [".lock"]  # nothing of the refused run was written
    assert done.returncode != 0
    assert "error: " in done.stderr and "is in use by pid" in done.stderr, done.stderr[-3000:]


def test_teaching_run_under_a_relative_work_dir(tmp_path, world, monkeypatch):
    """The notebooks pass ``work_dir="../runs/notebooks"``: the lock teaching_run holds is the run's lock
    whether its path is written relative or absolute."""
    from vclip.notebooks import teaching_run

    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    settings = dict(steps=2, preset="tiny", videos_per_group=4, clips_per_video=2, retrieval=False, progress=False,
                    device="cpu", val_max_groups=1)
    run = teaching_run(world, "../work", **settings)
    assert (run / "checkpoints" / "LATEST").read_text().strip() == "step_000002"
    assert run.resolve() == (tmp_path / "work" / "runs").resolve() / run.name
