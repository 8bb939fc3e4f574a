"""Chapter 05's exercise checkers (vclip.exercises.full_scale): the package's answer passes, a wrong one fails
naming both numbers (or the missing and extra names)."""

import json

import pytest

from vclip.config import load_recipe, recipe_path
from vclip.exercises.full_scale import (
    RESUME_CANDIDATES,
    check_paper_update,
    check_rank_shares,
    check_resumable_settings,
    epoch_plan,
    paper_gpus,
)
from vclip.rundir import RESUMABLE_CHANGES


def test_paper_gpus_is_the_launch_command_of_the_recipe_file():
    comment = json.loads(recipe_path("paper").read_text())["_comment"]
    assert f"--nproc-per-node {paper_gpus()}" in comment


def test_paper_update_right_and_wrong():
    paper = load_recipe("paper")
    per_gpu = paper.videos_per_group * paper.clips_per_video
    right = check_paper_update(paper_gpus() * per_gpu, per_gpu, paper_gpus() * per_gpu)
    assert all(f.passed for f in right) and len(right) == 3
    wrong = check_paper_update(per_gpu, per_gpu - 1, paper_gpus() * per_gpu)  # one GPU's pairs; 511 negatives
    assert [f.passed for f in wrong] == [False, False, True]
    assert str(per_gpu) in wrong[0].message and str(paper_gpus() * per_gpu) in wrong[0].message
    assert str(per_gpu - 1) in wrong[1].message and "off by -1" in wrong[1].message
    assert all("no answer yet" in f.message for f in check_paper_update(None, None, None))


def _run_with_plan(folder, num_videos, num_groups):
    folder.mkdir()
    records = [{"kind": "epoch_plan", "epoch": 0, "retrieval": {"num_videos": num_videos, "num_groups": num_groups}},
               {"kind": "train", "step": 1, "loss": 1.0}]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def test_rank_shares_graded_against_the_runs_epoch_plan(tmp_path):
    run = _run_with_plan(tmp_path / "ddp", 256, 32)
    assert epoch_plan(run)["retrieval"]["num_videos"] == 256
    assert all(f.passed for f in check_rank_shares(run, 256, 32))
    wrong = check_rank_shares(run, 512, 32)
    assert not wrong[0].passed and "512" in wrong[0].message and "256" in wrong[0].message
    assert "metrics.jsonl" in wrong[0].message


def test_rank_shares_of_a_folder_without_a_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        check_rank_shares(tmp_path, 1, 1)
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"kind": "train", "step": 1}) + "\n")
    with pytest.raises(ValueError, match="no epoch_plan"):
        epoch_plan(tmp_path)


def test_resumable_settings_right_and_wrong():
    right = {name for name in RESUME_CANDIDATES if name in RESUMABLE_CHANGES}
    assert right and right != set(RESUME_CANDIDATES)  # the exercise has both kinds
    assert check_resumable_settings(right).passed
    wrong = check_resumable_settings((right | {"seed"}) - {"steps"})
    assert not wrong.passed and "seed" in wrong.message and "steps" in wrong.message
    assert "no answer yet" in check_resumable_settings(None).message
    assert "string" in check_resumable_settings("steps").message
    assert "not among the candidates" in check_resumable_settings({"batch"}).message
