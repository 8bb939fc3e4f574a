"""The run directory as training sees it: own it, resume from it or start it, save checkpoints into it.

Paper: VideoCLIP section 4.1 (the run keeps the checkpoint of lowest validation loss). Reference:
fairseq's checkpointing (``checkpoint_last.pt``, ``checkpoint_best.pt``, ``--save-interval-updates``
and ``--keep-last-epochs`` in ``projects/retri/videoclip/how2.yaml``). The layout itself (config,
metrics, lock, ``checkpoints/step_XXXXXX``, ``LATEST``, ``BEST``) belongs to :mod:`vclip.rundir`;
the resume rules are ``docs/reliability.md``.

A checkpoint folder holds the weights as a Hugging Face Hub model folder (``model.safetensors``,
``config.json``, a ``README.md`` model card; :mod:`vclip.hub`, loadable by
:func:`vclip.checkpoint.load_model`) and ``trainer_state.pt``: tensors and plain
containers only, read back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import torch

from vclip import distributed as vdist
from vclip.config import PretrainConfig
from vclip.errors import CheckpointError, ConfigError, RunDirError
from vclip.rundir import STATE_FILE, RunDir, RunLock, config_differences, read_json_file, step_name

# What a trainer state must hold, and of which type, to be resumed from.
STATE_FIELDS = {"step": int, "epoch": int, "group_pos": int, "world_size": int, "optimizer": dict,
                "scheduler": dict, "scaler": dict, "best_val": float, "best_step": int, "torch_rng": torch.Tensor}


def config_record(config: PretrainConfig) -> dict:
    """The configuration as the run directory saves it (plain JSON values)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


class RunCheckpoints:
    """One run directory, owned by this training process (the main rank writes, all ranks read)."""

    def __init__(self, config: PretrainConfig, dist: vdist.DistInfo, lock: RunLock | None = None):
        """``lock``: the run directory's lock when the caller already holds it (``vclip.notebooks.teaching_run``
        clears a run under its lock and trains it again without letting go); else :meth:`start` takes it."""
        if not config.output:
            raise ConfigError("run.output (the run directory, --output) is required")
        self.cfg, self.dist = config, dist
        self.rundir = RunDir(config.output)
        if lock is not None and not (lock.held and Path(lock.path).resolve() == Path(self.rundir.lock_path).resolve()):
            raise ValueError(f"the lock given for {self.rundir.path} is not its held lock ({lock.path})")
        self._given_lock = lock
        self._lock = None  # the run directory's lock, held by the main process while it trains

    def start(self) -> list[Path]:
        """Lock the directory first; then the checkpoints to resume from (newest first), or [] for a new run.

        A new run writes its configuration and an empty metrics log; a directory that already holds a
        run needs ``--resume`` (FileExistsError). ``--resume`` needs a run to resume: a directory without
        ``checkpoints/LATEST`` or without ``config.json`` is refused (:class:`RunDirError`), never started
        over in place; and a resume must keep the run's settings.
        """
        if self.cfg.resume and not self.rundir.latest_path.exists():  # before the lock, which creates the folder
            self._refuse_resume_without_checkpoint()
        if self.dist.is_main:
            self._lock = self._given_lock or self.rundir.lock()  # before anything is written
        if self.cfg.resume:
            candidates = self.rundir.resume_candidates()
            if not candidates:  # LATEST went away while this process waited for the lock
                self._refuse_resume_without_checkpoint()
            if self.dist.is_main:
                self._check_resume_config(config_record(self.cfg))
            return candidates
        if self.dist.is_main:
            if self.rundir.holds_run():
                raise FileExistsError(
                    f"{self.rundir.path} already holds a run; pass --resume to continue it or choose another --output"
                )
            self.rundir.write_config(config_record(self.cfg))
            self.rundir.rewrite_metrics([])
            if self.cfg.tensorboard:
                self.rundir.open_tensorboard()
        return []

    def _refuse_resume_without_checkpoint(self) -> None:
        raise RunDirError(
            f"{self.rundir.path}: --resume, but there is no run to resume: {self.rundir.latest_path} is missing "
            f"({'no checkpoint was saved' if self.rundir.path.is_dir() else 'the folder does not exist'}); "
            "start a new run without --resume and with another --output; nothing here was changed"
        )

    def resumed(self, step: int) -> list[dict] | None:
        """After restoring ``step``: the metrics logged up to it (later ones are forgotten); None off rank 0."""
        if not self.dist.is_main:
            return None
        history = self.rundir.metrics_until(step)
        self.rundir.write_config(config_record(self.cfg))
        if self.cfg.tensorboard:
            self.rundir.open_tensorboard(purge_step=step + 1)  # the events after the checkpoint are logged again
        return history

    def release(self) -> None:
        """Close the metric sinks and let go of the lock this process took (a lock the caller gave stays the caller's)."""
        self.rundir.close_sinks()
        if self._lock is not None and self._lock is not self._given_lock:
            self._lock.release()
        self._lock = None

    def _check_resume_config(self, requested: dict) -> None:
        """Refuse a resume whose settings differ from the run's saved ones (except those meant to change)."""
        if not self.rundir.config_path.exists():
            raise RunDirError(
                f"{self.rundir.config_path} is missing, so --resume cannot check that the settings are the run's "
                f"own (the checkpoints are kept); restore that file, or start a new run without --resume and "
                f"with another --output"
            )
        differences = config_differences(self.rundir.read_config(), requested)
        if differences:
            raise RunDirError(
                f"{self.rundir.config_path}: --resume with different settings ({'; '.join(differences)}); "
                f"a resumed run may change only {', '.join(sorted({'steps', 'epochs', 'log_every', 'save_every'}))} "
                f"and the other bookkeeping settings of docs/reliability.md; pass the run's own settings "
                f"(--config {self.rundir.config_path} --resume) or choose another --output"
            )

    def log(self, record: dict) -> None:
        """Append one record to ``metrics.jsonl`` (rank 0 only)."""
        if self.dist.is_main:
            self.rundir.append_metrics(record)

    def save(self, step: int, best_step: int, model, state: Callable[[], dict],
             extras: Callable[[Path], None] | None = None) -> Path | None:
        """Write checkpoints/step_XXXXXX atomically (temp dir, fsync, rename), then LATEST; prune old ones.

        ``state()`` gives the trainer state to store beside the weights, ``extras(folder)`` writes any other
        file (a fine-tuned head); the best checkpoint is kept.
        """
        vdist.barrier()
        path = None
        if self.dist.is_main:

            def write(folder: Path) -> None:
                from vclip.training.export import run_card_fields

                # a Hub model folder (config.json, model.safetensors, README.md: the run's evaluations so far)
                model.save_pretrained(folder, model_card_kwargs=run_card_fields(self.rundir.path, model.config))
                torch.save(state(), folder / STATE_FILE)
                if extras is not None:
                    extras(folder)

            path = self.rundir.save_checkpoint(step, write, best_step)
            self.rundir.prune(self.cfg.keep_last, {step_name(best_step)} if best_step >= 0 else set())
        vdist.barrier()
        return path

    def read(self, path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
        """The trainer state and the weights of a checkpoint folder, checked; nothing in them is executed."""
        from vclip.weights import load_state_file, load_weights_file

        state_path = Path(path) / STATE_FILE
        state = load_state_file(state_path)
        wrong = [k for k, kind in STATE_FIELDS.items() if not isinstance(state.get(k), kind)]
        if wrong:
            raise CheckpointError(f"{state_path}: expected a vclip trainer state, missing or mistyped {wrong}")
        if state["world_size"] != self.dist.world_size:
            raise RunDirError(
                f"{path}: saved with {state['world_size']} rank(s), resumed with {self.dist.world_size}; "
                "exact resume needs the same number of ranks"
            )
        read_json_file(Path(path) / "config.json")  # the checkpoint must stay loadable by load_model
        return state, load_weights_file(Path(path) / "model.safetensors")
