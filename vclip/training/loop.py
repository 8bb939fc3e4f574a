"""The training loop pre-training and fine-tuning share: update, log, validate, select, save, resume.

Paper: VideoCLIP sections 4.1 (pre-training) and 4 (fine-tuning every task from the pre-trained
checkpoint). Reference: fairseq's ``train.py`` loop as ``examples/MMPT`` runs it (validation and
``checkpoint_best`` at every save interval and at epoch ends; ``checkpoint_last`` to resume).

:class:`TrainingLoop` owns the counters (``step``, ``epoch``, ``group_pos``: batches of this epoch
trained on this rank), the best validation score, the run directory
(:class:`~vclip.training.checkpoints.RunCheckpoints`) and the update
(:class:`~vclip.training.update.Optimisation`: optimiser, schedule, clipping, precision, DDP). What
is trained is its subclass's: :class:`vclip.training.trainer.Trainer` (pre-training: retrieved groups,
the contrastive loss) and :class:`vclip.training.finetuning.FineTuner` (a task's batches, head and
loss). A subclass gives:

* ``plan_epoch(epoch)`` -> (the epoch's plan, a record to log or None), once per epoch;
* ``batch_at(position)`` -> this rank's batch at ``position`` of the current plan (built when asked);
* ``validate()`` -> the score of the model now, lower is better (None: nothing to validate);
* optionally ``evaluate()``, ``train_terms(record)``, ``on_epoch_end()``, ``extra_state()``,
  ``load_extra_state(state, folder)`` and ``finish()``.

Every random draw is keyed by :mod:`vclip.training.seeds` and the counters a checkpoint stores, so a
resumed run equals the uninterrupted one (``docs/reliability.md``).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import torch

from vclip import distributed as vdist
from vclip.errors import CheckpointError
from vclip.progress import progress_bar
from vclip.rundir import one_line
from vclip.training.checkpoints import RunCheckpoints, config_record

log = logging.getLogger("vclip.training")


class TrainingLoop:
    """One (per-rank) training process: counters, update, run directory, and the loop that drives them.

    The subclass sets ``self.model``, ``self.update``, ``self.steps_per_epoch`` and ``self.total_steps``
    in its ``__init__`` after calling :meth:`__init__` here.
    """

    progress_name = "train"
    logger = log

    def __init__(self, config, dist: vdist.DistInfo, checkpoints: RunCheckpoints):
        self.cfg, self.dist, self.device = config, dist, dist.device
        self.checkpoints = checkpoints
        self.run_dir = checkpoints.rundir.path
        self.step = 0
        self.epoch = 0
        self.epoch_groups = None  # the current epoch's plan (None: plan it before the next update)
        self.group_pos = 0  # batches of this epoch this rank has trained
        self.best_val = math.inf
        self.best_step = -1
        self.history: list[dict] = []

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The Adam optimiser (held by :attr:`update`, with the schedule and the loss scaler)."""
        return self.update.optimizer

    @property
    def scheduler(self):
        """The learning-rate schedule (fairseq's ``polynomial_decay``, :mod:`vclip.training.update`)."""
        return self.update.scheduler

    # ---------------------------------------------------------------- hooks (see the module docstring)
    def plan_epoch(self, epoch: int):
        raise NotImplementedError

    def batch_at(self, position: int):
        raise NotImplementedError

    def validate(self) -> float | None:
        return None

    def evaluate(self) -> dict:
        return {}

    def train_terms(self, record: dict) -> dict:
        """Extra entries of a training-loss record (averaged over ranks)."""
        return {}

    def batch_pairs(self, batch) -> int:
        """The pairs (or windows) a batch holds, for the throughput record."""
        return len(batch)

    def on_start(self) -> None:
        """Called once the run directory is accepted (a refusal comes first, alone): say what the run reads."""

    def on_epoch_end(self) -> None:
        """Called after the last update of an epoch (and its validation), before its checkpoint."""

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict, folder: Path) -> None:
        """Restore what :meth:`extra_state` and :meth:`write_checkpoint_extras` kept in checkpoint ``folder``."""

    def finish(self):
        return None

    # ---------------------------------------------------------------- one update
    def train_step(self, batch) -> dict:
        """One update (:meth:`Optimisation.step`); ``loss`` and ``grad_norm`` stay on the device."""
        record = self.update.step(batch, self.step)
        self.step += 1
        return record

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """Everything exact resume needs beside the weights: tensors and plain containers only, so that
        ``torch.load(weights_only=True)`` reads it back (:func:`vclip.weights.load_state_file`)."""
        return {
            "step": self.step,
            "epoch": self.epoch,
            "group_pos": self.group_pos,
            "world_size": self.dist.world_size,
            **self.update.state_dict(),
            "best_val": self.best_val,
            "best_step": self.best_step,
            "torch_rng": torch.get_rng_state(),
            "config": config_record(self.cfg),
            **self.extra_state(),
        }

    def save_checkpoint(self) -> Path | None:
        """Write checkpoints/step_XXXXXX atomically, then LATEST (:meth:`RunCheckpoints.save`)."""
        return self.checkpoints.save(self.step, self.best_step, self.model, self.state_dict,
                                     self.write_checkpoint_extras)

    def write_checkpoint_extras(self, folder: Path) -> None:
        """Files a subclass keeps beside the weights (a fine-tuned head)."""

    def load_checkpoint(self, path: Path) -> None:
        """Restore weights and loop state from a checkpoint folder; nothing in it is executed."""
        state, weights = self.checkpoints.read(path)
        try:
            self.model.load_weights(weights, source=str(Path(path) / "model.safetensors"))
            self.update.load_state_dict(state)
            torch.set_rng_state(state["torch_rng"])
            self.load_extra_state(state, Path(path))
        except (ValueError, KeyError, TypeError, RuntimeError, FileNotFoundError) as error:
            raise CheckpointError(
                f"{Path(path)}: does not fit this model and optimiser ({one_line(error, 200)})"
            ) from None
        self.step, self.epoch, self.group_pos = state["step"], state["epoch"], state["group_pos"]
        self.best_val, self.best_step = state["best_val"], state["best_step"]
        self.logger.info("resumed from %s at step %d (epoch %d, batch %d)", path, self.step, self.epoch,
                         self.group_pos)

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
                self.logger.warning("--resume skipped %d damaged checkpoint(s) (%s); resumed from %s, the newest "
                                    "that loads", len(skipped), "; ".join(skipped), folder)
            return folder
        raise CheckpointError(f"{self.run_dir}: --resume found no checkpoint that loads ({'; '.join(skipped)})")

    # ---------------------------------------------------------------- the loop
    def fit(self):
        """Train until ``total_steps``; checkpoint every ``save_every`` updates and at epoch ends.

        Validation (keeping the best checkpoint) runs at epoch ends (``val_at_epoch_end``), at every
        interval checkpoint (``val_at_save``; the reference does both), every ``val_every`` updates,
        and at the last update.
        """
        try:
            candidates = self.checkpoints.start()  # locks the run directory before anything is written
            self.on_start()
            if candidates:
                self.resume_from(candidates)
                history = self.checkpoints.resumed(self.step)
                if history is not None:
                    self.history = history
            vdist.barrier()
            self._train()
            return self.finish()
        finally:
            self.checkpoints.release()

    def _train(self) -> None:
        cfg = self.cfg
        bar = progress_bar(total=self.total_steps, initial=self.step, desc=self.progress_name,
                           enabled=cfg.progress and self.dist.is_main)
        window_pairs, window_t = 0, time.perf_counter()
        start_step, start_t = self.step, time.perf_counter()
        last_saved = self.step if cfg.resume else -1
        while self.step < self.total_steps:
            if self.epoch_groups is None:  # pre-training: the retrieval pass, before every epoch
                t0 = time.perf_counter()
                self.epoch_groups, info = self.plan_epoch(self.epoch)
                if info is not None:
                    info.update(kind="epoch_plan", step=self.step, seconds=time.perf_counter() - t0)
                    self._log(info)
            batch = self.batch_at(self.group_pos)
            record = self.train_step(batch)  # loss and grad_norm stay on the device until a log step
            self.group_pos += 1
            window_pairs += self.batch_pairs(batch) * self.dist.world_size
            bar.update(1)
            if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                elapsed = time.perf_counter() - window_t
                loss = vdist.all_reduce_mean(float(record["loss"]), self.device)
                entry = {"kind": "train", "step": self.step, "epoch": self.epoch, "loss": loss, "lr": record["lr"],
                         "grad_norm": float(record["grad_norm"]), "pairs_per_s": window_pairs / max(elapsed, 1e-9),
                         **self.train_terms(record)}
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
                self.on_epoch_end()
                self.epoch, self.group_pos, self.epoch_groups = self.epoch + 1, 0, None
            if validate or epoch_end or save or self.step == self.total_steps:
                self.save_checkpoint()  # after every validation, so that BEST names a checkpoint
                last_saved = self.step
        bar.close()
        if last_saved != self.step:  # resumed a finished run, or total_steps lowered
            self.save_checkpoint()

    def _log(self, record: dict) -> None:
        self.history.append(record)
        self.checkpoints.log(record)

    def _log_progress_line(self, entry: dict, seconds_per_step: float) -> None:
        """The plain-text progress of ``--no-progress`` runs (batch jobs, CI logs): one line per log interval."""
        left = int(seconds_per_step * (self.total_steps - self.step))
        self.logger.info(
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
