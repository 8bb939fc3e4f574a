"""The pre-training loop: plan an epoch, update, log, validate, save; resume exactly where it stopped.

Paper: VideoCLIP sections 3.3-3.4 and 4.1. Reference (fairseq ``examples/MMPT``):
``mmpt/tasks/retritask.py`` (the retrieval pass before every epoch, the first included) and
fairseq's ``train.py`` loop (validation and ``checkpoint_best`` at every save interval and at epoch
ends, as ``projects/retri/videoclip/how2.yaml`` sets it).

The parts it calls are one idea each: :class:`~vclip.training.plan.EpochPlan` (which videos form
each batch), :class:`~vclip.training.update.Optimisation` (one update),
:mod:`vclip.training.validation` (validation loss, zero-shot evaluation) and
:class:`~vclip.training.checkpoints.RunCheckpoints` (the run directory). The program around it is
:mod:`vclip.pretrain`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vclip import distributed as vdist
from vclip.config import PretrainConfig
from vclip.errors import CheckpointError, ConfigError
from vclip.progress import progress_bar
from vclip.rundir import RunLock, one_line
from vclip.training.checkpoints import RunCheckpoints, config_record
from vclip.training.plan import EpochPlan
from vclip.training.update import Optimisation
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


class Trainer:
    """One (per-rank) training process: its data plan, model, update, run directory and counters.

    The counters (``step``, ``epoch``, ``group_pos``: groups of this epoch this rank has trained,
    ``epoch_groups``: the epoch's plan, ``best_val``/``best_step``) are what a checkpoint stores beside
    the weights and optimiser, so that a resumed run equals the uninterrupted one.
    """

    def __init__(self, config: PretrainConfig, dist: vdist.DistInfo | None = None, data=None, model=None,
                 lock: RunLock | None = None):
        """``data``: None (read ``config.data``) or (store, train_ids, val_ids), e.g. plain arrays in a
        :class:`vclip.sampling.ArrayVideos`; ``model``: None (``config.model.build()``); ``lock``: the run
        directory's lock when the caller holds it already (:class:`RunCheckpoints`)."""
        self.cfg = config
        default_device = "cuda" if torch.cuda.is_available() else "cpu"
        self.dist = dist or vdist.DistInfo(device=torch.device(config.device or default_device))
        self.device = self.dist.device
        store, train_ids, val_ids = data if data is not None else open_pretrain_data(config.data)
        self.store, self.train_ids, self.val_ids = store, list(train_ids), list(val_ids)
        if not self.train_ids:
            raise ConfigError(f"{config.data}: no training videos")
        self.checkpoints = RunCheckpoints(config, self.dist, lock)
        self.run_dir = self.checkpoints.rundir.path

        torch.manual_seed(config.seed)  # identical initialisation on every rank
        self.model = (model or config.model.build()).to(self.device).train()
        self.plan = EpochPlan(config, self.dist, self.store, self.train_ids)
        self.steps_per_epoch = self.plan.steps_per_epoch
        if config.steps is not None:
            self.total_steps = int(config.steps)
        else:
            self.total_steps = int(config.epochs or 1) * self.steps_per_epoch
        self.update = Optimisation(config, self.model, self.dist, self.total_steps)

        self.step = 0
        self.epoch = 0
        self.epoch_groups: list[list[int]] | None = None  # all ranks' groups of the current epoch, shuffled
        self.group_pos = 0  # groups of this epoch this rank has trained
        self.best_val = math.inf
        self.best_step = -1
        self.history: list[dict] = []

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The Adam optimiser (held by :attr:`update`, with the schedule and the loss scaler)."""
        return self.update.optimizer

    # ---------------------------------------------------------------- the parts, as the loop calls them
    def plan_epoch(self, epoch: int) -> tuple[list[list[int]], dict]:
        """All ranks' groups for ``epoch`` (indices into train_ids), shuffled; plus retrieval stats."""
        return self.plan.plan(self.model, epoch, self.device, self.update.autocast_dtype)

    def batch_for(self, epoch: int, position: int, group: list[int]):
        """The collated V*C pairs of ``group`` at ``position`` in ``epoch`` on this rank, checked on the host."""
        return self.plan.batch(self.model, epoch, position, group)

    def forward_backward(self, batch) -> torch.Tensor:
        """The loss of this rank's V*C pairs, with gradients left in ``.grad`` (DDP-averaged over ranks)."""
        return self.update.forward_backward(batch)

    def train_step(self, batch) -> dict:
        """One update (:meth:`Optimisation.step`); ``loss`` and ``grad_norm`` stay on the device."""
        record = self.update.step(batch, self.step)
        self.step += 1
        return record

    def validate(self) -> float | None:
        """Mean contrastive loss over the val.lst groups (:func:`vclip.training.validation.validation_loss`)."""
        return validation_loss(self.model, self.store, self.val_ids, self.cfg, self.dist, self.update.autocast)

    def evaluate(self) -> dict:
        """Zero-shot ``eval_task`` on ``eval_data`` (rank 0 evaluates; the others wait)."""
        return zero_shot_record(self.model, self.cfg, self.dist)

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """Everything exact resume needs beside the weights: tensors and plain containers only, so that
        ``torch.load(weights_only=True)`` reads it back (:func:`vclip.weights.load_state_file`)."""
        return {
            "step": self.step,
            "epoch": self.epoch,
            "group_pos": self.group_pos,
            "epoch_groups": self.epoch_groups,
            "world_size": self.dist.world_size,
            **self.update.state_dict(),
            "best_val": self.best_val,
            "best_step": self.best_step,
            "torch_rng": torch.get_rng_state(),
            "config": config_record(self.cfg),
        }

    def save_checkpoint(self) -> Path | None:
        """Write checkpoints/step_XXXXXX atomically, then LATEST (:meth:`RunCheckpoints.save`)."""
        return self.checkpoints.save(self.step, self.best_step, self.model, self.state_dict)

    def load_checkpoint(self, path: Path) -> None:
        """Restore weights and trainer state from a checkpoint folder; nothing in it is executed."""
        state, weights = self.checkpoints.read(path)
        try:
            self.model.load_weights(weights, source=str(Path(path) / "model.safetensors"))
            self.update.load_state_dict(state)
            torch.set_rng_state(state["torch_rng"])
        except (ValueError, KeyError, TypeError, RuntimeError) as error:
            raise CheckpointError(
                f"{Path(path)}: does not fit this model and optimiser ({one_line(error, 200)})"
            ) from None
        self.step, self.epoch, self.group_pos = state["step"], state["epoch"], state["group_pos"]
        self.epoch_groups = state["epoch_groups"]
        self.best_val, self.best_step = state["best_val"], state["best_step"]
        log.info("resumed from %s at step %d (epoch %d, group %d)", path, self.step, self.epoch, self.group_pos)

    def resume_from(self, candidates: list[Path]) -> Path:
        """Restore the newest checkpoint of ``candidates`` (newest first) that loads; say which were skipped.

        A damaged newest checkpoint (a truncated ``model.safetensors`` or ``trainer_state.pt``: a kill or a
        full disk while copying a run) is skipped with a warning naming it and why; the run goes on from
        the one before, and the skipped folder is replaced when training reaches its step again. When
        none loads, the :class:`CheckpointError` names every one and its reason.
        """
        skipped = []
        for folder in candidates:
            try:
                self.load_checkpoint(folder)
            except CheckpointError as error:
                skipped.append(f"{folder.name}: {one_line(error, 240)}")
                continue
            if skipped:
                log.warning("--resume skipped %d damaged checkpoint(s) (%s); resumed from %s, the newest that loads",
                            len(skipped), "; ".join(skipped), folder)
            return folder
        raise CheckpointError(f"{self.run_dir}: --resume found no checkpoint that loads ({'; '.join(skipped)})")

    # ---------------------------------------------------------------- the loop
    def fit(self) -> PretrainResult:
        """Train until ``total_steps``; checkpoint every ``save_every`` updates and at epoch ends.

        Validation (keeping the best checkpoint) runs at epoch ends (``val_at_epoch_end``), at every
        interval checkpoint (``val_at_save``; the reference does both), every ``val_every`` updates,
        and at the last update.
        """
        try:
            candidates = self.checkpoints.start()  # locks the run directory before anything is written
            if candidates:
                self.resume_from(candidates)
                history = self.checkpoints.resumed(self.step)
                if history is not None:
                    self.history = history
            vdist.barrier()
            return self._train()
        finally:
            self.checkpoints.release()

    def _train(self) -> PretrainResult:
        cfg = self.cfg
        bar = progress_bar(total=self.total_steps, initial=self.step, desc="pretrain", enabled=cfg.progress and self.dist.is_main)
        window_pairs, window_t = 0, time.perf_counter()
        start_step, start_t = self.step, time.perf_counter()
        last_saved = self.step if self.cfg.resume else -1
        while self.step < self.total_steps:
            if self.epoch_groups is None:  # the retrieval pass, before every epoch including the first
                t0 = time.perf_counter()
                self.epoch_groups, info = self.plan_epoch(self.epoch)
                info.update(kind="epoch_plan", step=self.step, groups=len(self.epoch_groups), seconds=time.perf_counter() - t0)
                self._log(info)
            group = self.plan.rank_groups(self.epoch_groups)[self.group_pos]
            batch = self.batch_for(self.epoch, self.group_pos, group)
            record = self.train_step(batch)  # loss and grad_norm stay on the device until a log step
            self.group_pos += 1
            window_pairs += len(batch) * self.dist.world_size
            bar.update(1)
            if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                elapsed = time.perf_counter() - window_t
                loss = vdist.all_reduce_mean(float(record["loss"]), self.device)
                entry = {"kind": "train", "step": self.step, "epoch": self.epoch, "loss": loss, "lr": record["lr"],
                         "grad_norm": float(record["grad_norm"]), "pairs_per_s": window_pairs / max(elapsed, 1e-9)}
                for term in ("loss_video_to_text", "loss_text_to_video"):  # the two directions of the loss
                    entry[term] = vdist.all_reduce_mean(float(record[term]), self.device)
                self._log(entry)
                bar.set_postfix(loss=f"{loss:.3f}", epoch=self.epoch)
                if not cfg.progress and self.dist.is_main:
                    self._log_progress_line(entry, (time.perf_counter() - start_t) / max(self.step - start_step, 1))
                window_pairs, window_t = 0, time.perf_counter()
            if cfg.eval_every and self.step % cfg.eval_every == 0:
                self._log({"kind": "eval", "step": self.step, "task": cfg.eval_task, **self.evaluate()})
            epoch_end = self.group_pos >= self.steps_per_epoch
            save = self.step % cfg.save_every == 0
            validate = ((cfg.val_every and self.step % cfg.val_every == 0) or (epoch_end and cfg.val_at_epoch_end)
                        or (save and cfg.val_at_save))
            if validate or self.step == self.total_steps:
                self._validate_and_log()
            if epoch_end:
                self.epoch, self.group_pos, self.epoch_groups = self.epoch + 1, 0, None
            if validate or epoch_end or save or self.step == self.total_steps:
                self.save_checkpoint()  # after every validation, so that BEST names a checkpoint
                last_saved = self.step
        bar.close()
        if last_saved != self.step:  # resumed a finished run, or total_steps lowered
            self.save_checkpoint()
        return PretrainResult(self.run_dir, self.history, self.step)

    def _log(self, record: dict) -> None:
        self.history.append(record)
        self.checkpoints.log(record)

    def _log_progress_line(self, entry: dict, seconds_per_step: float) -> None:
        """The plain-text progress of ``--no-progress`` runs (batch jobs, CI logs): one line per log interval."""
        left = int(seconds_per_step * (self.total_steps - self.step))
        log.info(
            "step %d/%d  loss %.4f  lr %.3g  %.0f pairs/s  %d:%02d:%02d left",
            self.step, self.total_steps, entry["loss"], entry["lr"], entry["pairs_per_s"],
            left // 3600, left // 60 % 60, left % 60,
        )

    def _validate_and_log(self) -> None:
        val = self.validate()
        if val is None:
            return
        if val < self.best_val:
            self.best_val, self.best_step = val, self.step
        self._log({"kind": "val", "step": self.step, "epoch": self.epoch, "val_loss": val})
