"""Pre-training on the shared loop: plan an epoch by retrieval, contrast its groups, validate, save, resume.

Paper: VideoCLIP sections 3.3-3.4 and 4.1. Reference (fairseq ``examples/MMPT``):
``mmpt/tasks/retritask.py`` (the retrieval pass before every epoch, the first included) and
fairseq's ``train.py`` loop (validation and ``checkpoint_best`` at every save interval and at epoch
ends, as ``projects/retri/videoclip/how2.yaml`` sets it).

The loop itself (counters, logging, validation, checkpoints, resume) is
:class:`~vclip.training.loop.TrainingLoop`, which fine-tuning runs too. The parts it calls are one idea each: :class:`~vclip.training.plan.EpochPlan` (which videos form
each batch), :class:`~vclip.training.update.Optimisation` (one update),
:mod:`vclip.training.validation` (validation loss, zero-shot evaluation) and
:class:`~vclip.training.checkpoints.RunCheckpoints` (the run directory). The program around it is
:mod:`vclip.pretrain`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vclip import distributed as vdist
from vclip.config import PretrainConfig
from vclip.errors import ConfigError
from vclip.rundir import RunLock
from vclip.training.checkpoints import RunCheckpoints
from vclip.training.loop import TrainingLoop
from vclip.training.plan import EpochPlan
from vclip.training.update import ContrastiveObjective, Optimisation
from vclip.training.validation import validation_loss, zero_shot_record

log = logging.getLogger("vclip.pretrain")  # the program's logger: its progress lines are the program's


def open_pretrain_data(path):
    """(store, train_ids, val_ids) of a pre-training folder or feature store (vclip.data)."""
    from vclip.data.store import open_pretrain

    return open_pretrain(path)


@dataclass
class PretrainResult:
    run_dir: Path
    history: list[dict] = field(default_factory=list)
    final_step: int = 0


class Trainer(TrainingLoop):
    """One (per-rank) pre-training process: its data plan, model and update, on the shared loop
    (:class:`~vclip.training.loop.TrainingLoop`: counters, validation, checkpoints, resume).

    The counters (``step``, ``epoch``, ``group_pos``: groups of this epoch this rank has trained,
    ``epoch_groups``: the epoch's plan, ``best_val``/``best_step``) are what a checkpoint stores beside
    the weights and optimiser, so that a resumed run equals the uninterrupted one.
    """

    progress_name = "pretrain"
    logger = log

    def __init__(self, config: PretrainConfig, dist: vdist.DistInfo | None = None, data=None, model=None,
                 lock: RunLock | None = None):
        """``data``: None (read ``config.data``) or (store, train_ids, val_ids), e.g. plain arrays in a
        :class:`vclip.sampling.ArrayVideos`; ``model``: None (``config.model.build()``); ``lock``: the run
        directory's lock when the caller holds it already (:class:`RunCheckpoints`)."""
        default_device = "cuda" if torch.cuda.is_available() else "cpu"
        dist = dist or vdist.DistInfo(device=torch.device(config.device or default_device))
        store, train_ids, val_ids = data if data is not None else open_pretrain_data(config.data)
        self.store, self.train_ids, self.val_ids = store, list(train_ids), list(val_ids)
        if not self.train_ids:
            raise ConfigError(f"{config.data}: no training videos")
        super().__init__(config, dist, RunCheckpoints(config, dist, lock))

        torch.manual_seed(config.seed)  # identical initialisation on every rank
        self.model = (model or config.model.build()).to(self.device).train()
        self.plan = EpochPlan(config, self.dist, self.store, self.train_ids)
        self.steps_per_epoch = self.plan.steps_per_epoch
        if config.steps is not None:
            self.total_steps = int(config.steps)
        else:
            self.total_steps = int(config.epochs or 1) * self.steps_per_epoch
        self.update = Optimisation(config, self.model, self.dist, self.total_steps, ContrastiveObjective(config))

    # ---------------------------------------------------------------- the parts, as the loop calls them
    def plan_epoch(self, epoch: int) -> tuple[list[list[int]], dict]:
        """All ranks' groups for ``epoch`` (indices into train_ids), shuffled; plus retrieval stats."""
        groups, info = self.plan.plan(self.model, epoch, self.device, self.update.autocast_dtype)
        info["groups"] = len(groups)
        return groups, info

    def batch_at(self, position: int):
        group = self.plan.rank_groups(self.epoch_groups)[position]
        return self.batch_for(self.epoch, position, group)

    def batch_for(self, epoch: int, position: int, group: list[int]):
        """The collated V*C pairs of ``group`` at ``position`` in ``epoch`` on this rank, checked on the host."""
        return self.plan.batch(self.model, epoch, position, group)

    def forward_backward(self, batch) -> torch.Tensor:
        """The loss of this rank's V*C pairs, with gradients left in ``.grad`` (DDP-averaged over ranks)."""
        return self.update.forward_backward(batch)

    def train_terms(self, record: dict) -> dict:
        return {term: vdist.all_reduce_mean(float(record[term]), self.device)  # the two directions of the loss
                for term in ("loss_video_to_text", "loss_text_to_video")}

    def validate(self) -> float | None:
        """Mean contrastive loss over the val.lst groups (:func:`vclip.training.validation.validation_loss`)."""
        return validation_loss(self.model, self.store, self.val_ids, self.cfg, self.dist, self.update.autocast)

    def evaluate(self) -> dict:
        """Zero-shot ``eval_task`` on ``eval_data`` (rank 0 evaluates; the others wait)."""
        return zero_shot_record(self.model, self.cfg, self.dist)

    def extra_state(self) -> dict:
        return {"epoch_groups": self.epoch_groups}

    def load_extra_state(self, state: dict, folder: Path) -> None:
        self.epoch_groups = state["epoch_groups"]

    def finish(self) -> PretrainResult:
        return PretrainResult(self.run_dir, self.history, self.step)
