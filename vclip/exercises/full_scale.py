"""Checkers for the exercises of chapter 05 (the full-scale programs).

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4.1 (8 GPUs, 512 video/text pairs each, negatives local to
a GPU). Reference: fairseq ``examples/MMPT``, ``projects/retri/videoclip/how2.yaml`` (per-GPU batch) and
``mmpt/tasks/retritask.py`` (each rank retrieves its groups from its own share of the videos).

Each checker grades against what the package computes: the paper recipe (``vclip/configs/paper.json``), a
run directory's ``metrics.jsonl`` (what the program really did), or :data:`vclip.rundir.RESUMABLE_CHANGES`
(what ``--resume`` accepts). See :mod:`vclip.exercises` for the shared helpers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from vclip.exercises import Feedback, compare_number, compare_set, not_answered

__all__ = ["RESUME_CANDIDATES", "check_paper_update", "check_rank_shares", "check_resumable_settings",
           "epoch_plan", "paper_gpus"]


def paper_gpus() -> int:
    """The number of GPUs of the paper's run: ``--nproc-per-node N`` of the launch command that
    ``vclip/configs/paper.json`` records (a launch setting of torchrun, not a field of the recipe)."""
    from vclip.config import recipe_path

    path = recipe_path("paper")
    comment = json.loads(path.read_text(encoding="utf-8")).get("_comment", "")
    found = re.search(r"--nproc-per-node\s+(\d+)", comment)
    if found is None:
        raise ValueError(f"{path}: _comment: expected the launch command with --nproc-per-node N, found none")
    return int(found.group(1))


def check_paper_update(pairs_per_update, candidates_local, candidates_global) -> list[Feedback]:
    """Exercise 05.1: the paper's update in numbers.

    Args:
        pairs_per_update: video/text pairs in one update over all GPUs.
        candidates_local: the videos each text is scored against with GPU-local negatives (the paper).
        candidates_global: the same with ``--optimisation.global-negatives`` (all GPUs' pairs).
    """
    from vclip.config import load_recipe

    paper, gpus = load_recipe("paper"), paper_gpus()
    per_gpu = paper.videos_per_group * paper.clips_per_video
    source = f"vclip/configs/paper.json ({gpus} GPUs x {paper.videos_per_group} videos x {paper.clips_per_video} clips)"
    return [compare_number("05.1", "your pairs per update", pairs_per_update, gpus * per_gpu, source),
            compare_number("05.1", "your candidates per text, GPU-local", candidates_local, per_gpu, source),
            compare_number("05.1", "your candidates per text, global negatives", candidates_global, gpus * per_gpu,
                           source)]


def epoch_plan(run_dir: str | Path) -> dict:
    """The first ``epoch_plan`` record of a pre-training run's ``metrics.jsonl`` (rank 0's retrieval share)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics here; pass the --output folder of a vclip.pretrain run")
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("kind") == "epoch_plan":
            return record
    raise ValueError(f"{path}: no epoch_plan record (the run planned no epoch)")


def check_rank_shares(run_dir: str | Path, videos_per_rank, groups_per_rank) -> list[Feedback]:
    """Exercise 05.2: how many videos each rank's retrieval index holds, and how many groups (updates) one
    epoch gives each rank, graded against the run's own ``epoch_plan`` record."""
    retrieval = epoch_plan(run_dir)["retrieval"]
    source = f"{Path(run_dir).name}/metrics.jsonl (epoch_plan)"
    return [compare_number("05.2", "your videos per rank", videos_per_rank, retrieval["num_videos"], source),
            compare_number("05.2", "your groups per rank and epoch", groups_per_rank, retrieval["num_groups"], source)]


# the settings exercise 05.3 asks about (a short name each, as on the command line without its section)
RESUME_CANDIDATES = ("steps", "seed", "lr", "log_every", "videos_per_group", "save_every", "nprobe", "epochs")


def check_resumable_settings(answer) -> Feedback:
    """Exercise 05.3: which of :data:`RESUME_CANDIDATES` may ``--resume`` change (the others are refused)."""
    from vclip.rundir import RESUMABLE_CHANGES

    if answer is None:
        return not_answered("05.3", "resumable (a set of names from RESUME_CANDIDATES)")
    if isinstance(answer, str):
        return Feedback("05.3", False, f"resumable should be a set of names, got the string {answer!r}")
    unknown = sorted(set(answer) - set(RESUME_CANDIDATES), key=str)
    if unknown:
        return Feedback("05.3", False, f"{unknown} are not among the candidates {list(RESUME_CANDIDATES)}")
    expected = {name for name in RESUME_CANDIDATES if name in RESUMABLE_CHANGES}
    return compare_set("05.3", "your resumable settings", answer, expected, "vclip.rundir.RESUMABLE_CHANGES")
