"""The pre-training program: retrieval-augmented contrastive training on overlapped clips.

Paper: VideoCLIP sections 3.3-3.4 (overlapped clips, retrieval-augmented training) and 4.1
(pre-training on HowTo100M: 8 GPUs x 512 pairs, Adam, lr 5e-5, 1000 warm-up updates, 25 epochs).

Reference (fairseq ``examples/MMPT``):
``projects/retri/videoclip/how2.yaml`` (hyper-parameters), ``mmpt/tasks/retritask.py`` (the retrieval
pass before each epoch, the group -> 512-pair reshape), ``mmpt/losses/nce.py::MMContraLoss`` (the
loss), fairseq's ``adam`` optimiser and ``polynomial_decay`` scheduler, and its checkpointing
(``checkpoint_best`` by lowest validation loss on How2 val groups).

Programs::

    python -m vclip.pretrain --data DIR --output runs/tiny                 # the teaching recipe (CPU)
    torchrun --nproc-per-node 8 -m vclip.pretrain --config paper --data DIR --output RUN
    python -m vclip.pretrain --help                                         # every setting, by section

The configuration (sections, recipes, command line) is ``vclip.config``.

Python API (used by the notebooks)::

    from vclip.pretrain import load_recipe, pretrain
    result = pretrain(load_recipe("teaching").updated(data=..., output=..., steps=200))
    result.run_dir, result.history

Run directory (:mod:`vclip.rundir`, ``docs/design.md``)::

    <run>/config.json, <run>/metrics.jsonl, <run>/.lock (while running),
    <run>/checkpoints/step_XXXXXX/{model.safetensors, config.json, trainer_state.pt}, <run>/checkpoints/LATEST

A run locks its directory before writing anything; ``--resume`` refuses settings that differ from the
saved ones except those in :data:`vclip.rundir.RESUMABLE_CHANGES` (``docs/reliability.md``).

Everything random derives from ``--seed`` through ``numpy.random.SeedSequence`` keys (epoch, rank,
group position, step), so an interrupted run resumed from its last checkpoint equals the uninterrupted
run: the checkpoint holds the model, optimiser, scheduler, gradient scaler, the epoch's groups and the
position in them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vclip import distributed as vdist
from vclip.config import ConfigError, PretrainConfig, load_recipe, parse_command_line  # noqa: F401 (re-exported)
from vclip.progress import progress_bar
from vclip.retrieval import random_groups, retrieval_groups, video_vectors
from vclip.rundir import (
    STATE_FILE,
    CheckpointError,
    RunDir,
    RunDirError,
    config_differences,
    one_line,
    read_json_file,
    step_name,
)
from vclip.sampling import sample_group

log = logging.getLogger(__name__)

STATE_NAME = STATE_FILE


# ---------------------------------------------------------------------------------------- schedule
def polynomial_decay(step: int, warmup: int, total: int, peak: float, end: float = 0.0, power: float = 1.0):
    """fairseq ``polynomial_decay`` lr at ``step`` previous updates (warm-up starts at peak/warmup)."""
    if warmup > 0 and step <= warmup:
        return peak * max(step, 1) / warmup
    if step >= total:
        return end
    remaining = 1 - (step - warmup) / max(total - warmup, 1)
    return (peak - end) * remaining**power + end


# ---------------------------------------------------------------------------------------- data
def open_pretrain_data(path: str | os.PathLike):
    """(store, train_ids, val_ids) of a pre-training folder or feature store (vclip.data)."""
    from vclip.data.store import open_pretrain

    return open_pretrain(path)


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


# Distinct streams derived from the seed (so each can be replayed on resume).
_SHARES, _EMBED, _GROUPS, _ORDER, _CLIPS, _DROPOUT, _VAL = range(7)


def _stable_seed(*key: int) -> int:
    return int(np.random.SeedSequence([int(k) for k in key]).generate_state(1, np.uint64)[0] >> 1)


@dataclass
class PretrainResult:
    run_dir: Path
    history: list[dict] = field(default_factory=list)
    final_step: int = 0


class Trainer:
    """Holds the model, optimiser, data plan and run directory of one (per-rank) training process."""

    def __init__(self, config: PretrainConfig, dist: vdist.DistInfo | None = None, data=None, model=None):
        """``data``: None (read ``config.data``) or (store, train_ids, val_ids), e.g. plain arrays in a
        :class:`vclip.sampling.ArrayVideos`; ``model``: None (``config.model.build()``)."""
        self.cfg = config
        default_device = "cuda" if torch.cuda.is_available() else "cpu"
        self.dist = dist or vdist.DistInfo(device=torch.device(config.device or default_device))
        self.device = self.dist.device
        store, train_ids, val_ids = data if data is not None else open_pretrain_data(config.data)
        self.store, self.train_ids, self.val_ids = store, list(train_ids), list(val_ids)
        if not self.train_ids:
            raise ConfigError(f"{config.data}: no training videos")
        if not config.output:
            raise ConfigError("run.output (the run directory, --output) is required")
        self.rundir = RunDir(config.output)
        self.run_dir = self.rundir.path
        self._lock = None  # the run directory's lock, held by the main process while it trains

        torch.manual_seed(config.seed)  # identical initialisation on every rank
        self.model = (model or config.model.build()).to(self.device).train()
        self.ddp = None
        if self.dist.is_distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            # The BERT poolers are computed but unused (as the reference), so they get no gradient.
            self.ddp = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=ids, find_unused_parameters=True
            )

        self.autocast_dtype = self._autocast_dtype()
        self.optimizer = torch.optim.Adam(
            self.model.parameters(),
            lr=config.lr,
            betas=config.betas,
            eps=config.adam_eps,
            weight_decay=config.weight_decay,
        )
        self.scaler = torch.amp.GradScaler(
            "cuda", init_scale=128.0, enabled=self.autocast_dtype == torch.float16
        )  # fairseq --fp16 starts its loss scale at 128

        self.groups_per_epoch = self._count_groups()
        self.steps_per_epoch = self.groups_per_epoch // self.dist.world_size
        if self.steps_per_epoch < 1:
            raise ConfigError(
                f"{len(self.train_ids)} training videos make {self.groups_per_epoch} groups of "
                f"{config.videos_per_group} videos, fewer than {self.dist.world_size} rank(s): lower --videos-per-group"
            )
        if config.steps is not None:
            self.total_steps = int(config.steps)
        else:
            self.total_steps = int(config.epochs or 1) * self.steps_per_epoch
        total = config.total_num_update or self.total_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: polynomial_decay(s, config.warmup_updates, total, 1.0)
        )
        self.step = 0
        self.epoch = 0
        self.epoch_groups: list[list[int]] | None = None  # all ranks' groups of the current epoch, shuffled
        self.group_pos = 0  # groups of this epoch this rank has trained
        self.best_val = math.inf
        self.best_step = -1
        self.history: list[dict] = []
        self._checked_shapes: set[tuple] = set()

    # ---------------------------------------------------------------- setup helpers
    def _autocast_dtype(self) -> torch.dtype | None:
        p = self.cfg.precision
        if self.device.type != "cuda":
            if p in ("fp16", "bf16"):
                raise ConfigError(f"precision {p!r} is for GPUs only; this run is on {self.device}")
            return None
        return {"auto": torch.float16, "fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}[p]

    def _shares(self, epoch: int) -> list[np.ndarray]:
        """Each rank's share of the training videos for the embedding pass (a DistributedSampler).

        ``retrieval.shares == "fixed"``: the same shares every epoch, as the reference (its sampler's
        epoch is never set); ``"per_epoch"``: redrawn each epoch.
        """
        if self.cfg.retrieval.shares == "fixed":
            epoch = 0
        perm = _rng(self.cfg.seed, _SHARES, epoch).permutation(len(self.train_ids))
        return [perm[r :: self.dist.world_size] for r in range(self.dist.world_size)]

    def _count_groups(self) -> int:
        v = self.cfg.videos_per_group
        if self.cfg.retrieval.enabled and self.cfg.retrieval_scope == "rank":
            return sum(len(s) // v for s in self._shares(0))
        return len(self.train_ids) // v

    # ---------------------------------------------------------------- data plan
    def plan_epoch(self, epoch: int) -> tuple[list[list[int]], dict]:
        """All ranks' groups for ``epoch`` (indices into train_ids), shuffled; plus retrieval stats."""
        cfg, rank = self.cfg, self.dist.rank
        info: dict = {"epoch": epoch}
        if not cfg.retrieval.enabled:
            groups = random_groups(len(self.train_ids), cfg.videos_per_group, _rng(cfg.seed, _GROUPS, epoch))
        else:
            share = self._shares(epoch)[rank]
            t0 = time.perf_counter()
            vecs = video_vectors(
                self.model,
                self.store,
                [self.train_ids[i] for i in share],
                cfg.embed_clips_per_video or cfg.clips_per_video,
                _rng(cfg.seed, _EMBED, epoch, rank),
                cfg.sampling,
                cfg.embed_videos_per_batch,
                self.device,
                self.autocast_dtype,
                progress=cfg.progress and self.dist.is_main,
            )
            embed_s = time.perf_counter() - t0
            if cfg.retrieval_scope == "global":
                gathered = vdist.all_gather_objects((share, vecs))
                share = np.concatenate([s for s, _ in gathered])
                vecs = np.concatenate([v for _, v in gathered])
                key = (cfg.seed, _GROUPS, epoch)  # every rank forms the same groups
            else:
                key = (cfg.seed, _GROUPS, epoch, rank)
            local, stats = retrieval_groups(
                vecs,
                cfg.videos_per_group,
                _rng(*key),
                cfg.num_candidates,
                cfg.index,
                cfg.exact_max_videos,
                None,
                cfg.nprobe,
                cfg.retrieval.top_up,
            )
            stats.embed_seconds = embed_s
            local = [[int(share[i]) for i in g] for g in local]
            if cfg.retrieval_scope == "global":
                groups = local
            else:
                groups = [g for part in vdist.all_gather_objects(local) for g in part]
            info["retrieval"] = {k: v for k, v in dataclasses.asdict(stats).items() if k != "extra"}
        order = _rng(cfg.seed, _ORDER, epoch).permutation(len(groups))
        return [groups[i] for i in order], info

    def _rank_groups(self) -> list[list[int]]:
        w, r = self.dist.world_size, self.dist.rank
        return self.epoch_groups[r::w][: self.steps_per_epoch]

    def batch_for(self, epoch: int, position: int, group: list[int]):
        """The collated V*C pairs of ``group`` at ``position`` in ``epoch`` on this rank."""
        rng = _rng(self.cfg.seed, _CLIPS, epoch, self.dist.rank, position)
        ids = [self.train_ids[i] for i in group]
        batch = sample_group(self.store, ids, self.cfg.clips_per_video, rng, self.cfg.sampling)
        self._check_batch(batch, ids)
        return batch

    def _check_batch(self, batch, ids: list[str]) -> None:
        """Validate a batch on the host, where it is made (the forward pass then skips its value checks).

        The model's own checks of values (finite features, token ids in the vocabulary, [CLS] first)
        read device memory back, a host synchronisation per forward on a GPU; here the same facts are
        checked on the CPU arrays before they move. Shapes are checked once per batch shape.
        """
        vfeats, input_ids = batch.vfeats.numpy(), batch.input_ids.numpy()
        shape = (tuple(vfeats.shape[1:]), tuple(input_ids.shape[1:]))
        if shape not in self._checked_shapes:
            self.model.check_input_values = False  # values are checked below, on the host arrays
            try:
                self.model.check_inputs(batch.vfeats, batch.vmask, batch.input_ids, batch.attention_mask)
            finally:
                self.model.check_input_values = True
            self._checked_shapes.add(shape)
        finite = np.isfinite(vfeats).all(axis=(1, 2))
        if not finite.all():
            rows = np.flatnonzero(~finite)
            videos = sorted({ids[int(i)] for i in batch.video_index.numpy()[rows]})
            raise ValueError(f"videos {videos[:5]}: features contain NaN or inf")
        vocab = self.model.config.vocab_size
        if input_ids.size and (input_ids.min() < 0 or input_ids.max() >= vocab):
            raise ValueError(f"token ids must lie in [0, {vocab}) of the model's vocabulary, got {input_ids.max()}")

    # ---------------------------------------------------------------- one update
    def forward_backward(self, batch) -> torch.Tensor:
        """The loss of this rank's V*C pairs, with gradients left in ``.grad`` (DDP-averaged over ranks)."""
        from vclip.loss import contrastive_loss

        batch = batch.to(self.device)
        net = self.ddp or self.model
        self.model.check_input_values = False  # checked on the host by batch_for (no sync per forward)
        try:
            with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
                out = net(batch.vfeats, batch.vmask, batch.input_ids, batch.attention_mask)
        finally:
            self.model.check_input_values = True
        loss = contrastive_loss(out.pooled_video.float(), out.pooled_text.float(), self.cfg.temperature,
                                self.cfg.normalize, gather=self.cfg.global_negatives)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        return loss.detach()

    def train_step(self, batch) -> dict:
        """One update: forward, loss, backward, unscale, clip to ``clip_norm``, Adam step, lr schedule.

        Returns ``loss`` and ``grad_norm`` as 0-dim tensors on the device (reading them is a host sync,
        which the loop does at log intervals only) and ``lr`` as a float.
        """
        torch.manual_seed(_stable_seed(self.cfg.seed, _DROPOUT, self.step, self.dist.rank))  # dropout
        loss = self.forward_backward(batch)
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_norm)
        self.scaler.step(self.optimizer)  # skipped (and the scale lowered) on inf/NaN gradients under fp16
        self.scaler.update()
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        self.step += 1
        return {"loss": loss, "grad_norm": grad_norm.detach(), "lr": lr}

    # ---------------------------------------------------------------- validation / evaluation
    @torch.no_grad()
    def validate(self) -> float | None:
        """Mean contrastive loss over val.lst groups (overlapped sampling, no retrieval, fixed seed).

        Groups are consecutive slices of V val videos; a val list shorter than V gives one smaller
        group (the reference drops val lists under 256 videos; vclip does not).
        """
        from vclip.loss import contrastive_loss

        cfg = self.cfg
        if len(self.val_ids) * cfg.clips_per_video < 2:  # nothing to contrast
            return None
        v = cfg.videos_per_group
        groups = [self.val_ids[i : i + v] for i in range(0, len(self.val_ids), v)]
        if len(groups) > 1 and len(groups[-1]) < v:
            groups.pop()  # a short tail group would be easier than the others
        groups = groups[: cfg.val_max_groups]
        was_training = self.model.training
        self.model.eval()
        total, count = 0.0, 0
        try:
            for g, ids in enumerate(groups):
                if g % self.dist.world_size != self.dist.rank:
                    continue
                batch = sample_group(self.store, ids, cfg.clips_per_video, _rng(cfg.seed, _VAL, g), cfg.sampling)
                batch = batch.to(self.device)
                with torch.autocast(
                    self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None
                ):
                    out = self.model(batch.vfeats, batch.vmask, batch.input_ids, batch.attention_mask)
                total += float(contrastive_loss(out.pooled_video.float(), out.pooled_text.float(),
                                                cfg.temperature, cfg.normalize))
                count += 1
        finally:
            self.model.train(was_training)
        sums = vdist.all_gather_objects((total, count))
        total, count = sum(s for s, _ in sums), sum(c for _, c in sums)
        return total / count if count else None

    def evaluate(self) -> dict:
        """Zero-shot ``eval_task`` on ``eval_data`` (rank 0 evaluates; the others wait)."""
        from vclip.evaluate import evaluate_task

        record: dict = {}
        if self.dist.is_main:
            result = evaluate_task(self.model, self.cfg.eval_task, self.cfg.eval_data, device=self.device)
            record = {"metrics": result.metrics, "n": result.n_evaluated}
        self.model.train()
        vdist.barrier()
        return record

    # ---------------------------------------------------------------- run directory
    def _log(self, record: dict) -> None:
        self.history.append(record)
        if self.dist.is_main:
            self.rundir.append_metrics(record)

    def state_dict(self) -> dict:
        """Everything exact resume needs beside the weights: tensors and plain containers only, so that
        ``torch.load(weights_only=True)`` reads it back (:func:`vclip.checkpoint.load_state_file`)."""
        return {
            "step": self.step,
            "epoch": self.epoch,
            "group_pos": self.group_pos,
            "epoch_groups": self.epoch_groups,
            "world_size": self.dist.world_size,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "best_val": self.best_val,
            "best_step": self.best_step,
            "torch_rng": torch.get_rng_state(),
            "config": json.loads(json.dumps(dataclasses.asdict(self.cfg))),
        }

    def save_checkpoint(self) -> Path | None:
        """Write checkpoints/step_XXXXXX atomically (temp dir, fsync, rename), then LATEST (vclip.rundir)."""
        vdist.barrier()
        path = None
        if self.dist.is_main:

            def write(folder: Path) -> None:
                self.model.save_pretrained(folder)
                torch.save(self.state_dict(), folder / STATE_NAME)

            path = self.rundir.save_checkpoint(self.step, write, self.best_step)
            self.rundir.prune(self.cfg.keep_last, {step_name(self.best_step)} if self.best_step >= 0 else set())
        vdist.barrier()
        return path

    def load_checkpoint(self, path: Path) -> None:
        """Restore weights and trainer state from a checkpoint folder; nothing in it is executed."""
        from vclip.checkpoint import load_state_file, load_weights_file

        state_path = Path(path) / STATE_NAME
        state = load_state_file(state_path)
        expected = {"step": int, "epoch": int, "group_pos": int, "world_size": int, "optimizer": dict,
                    "scheduler": dict, "scaler": dict, "best_val": float, "best_step": int, "torch_rng": torch.Tensor}
        wrong = [k for k, kind in expected.items() if not isinstance(state.get(k), kind)]
        if wrong:
            raise CheckpointError(f"{state_path}: expected a vclip trainer state, missing or mistyped {wrong}")
        if state["world_size"] != self.dist.world_size:
            raise ValueError(
                f"{path}: saved with {state['world_size']} rank(s), resumed with {self.dist.world_size}; "
                "exact resume needs the same number of ranks"
            )
        read_json_file(Path(path) / "config.json")  # the checkpoint must stay loadable by load_model
        weights = Path(path) / "model.safetensors"
        self.model.load_weights(load_weights_file(weights), source=str(weights))
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
            torch.set_rng_state(state["torch_rng"])
        except (ValueError, KeyError, TypeError, RuntimeError) as error:
            raise CheckpointError(f"{state_path}: does not fit this model and optimiser ({one_line(error, 200)})") from None
        self.step, self.epoch, self.group_pos = state["step"], state["epoch"], state["group_pos"]
        self.epoch_groups = state["epoch_groups"]
        self.best_val, self.best_step = state["best_val"], state["best_step"]
        log.info("resumed from %s at step %d (epoch %d, group %d)", path, self.step, self.epoch, self.group_pos)

    def _check_resume_config(self, requested: dict) -> None:
        """Refuse a resume whose settings differ from the run's saved ones (except those meant to change)."""
        if not self.rundir.config_path.exists():
            return
        differences = config_differences(self.rundir.read_config(), requested)
        if differences:
            raise RunDirError(
                f"{self.rundir.config_path}: --resume with different settings ({'; '.join(differences)}); "
                f"a resumed run may change only {', '.join(sorted({'steps', 'epochs', 'log_every', 'save_every'}))} "
                f"and the other bookkeeping settings of docs/reliability.md; pass the run's own settings "
                f"(--config {self.rundir.config_path} --resume) or choose another --output"
            )

    def _prepare_run_dir(self) -> None:
        """Own the run directory (lock first), then start it or restore its latest checkpoint."""
        requested = json.loads(json.dumps(dataclasses.asdict(self.cfg)))
        if self.dist.is_main:
            self._lock = self.rundir.lock()  # before anything is written
        latest = self.rundir.latest() if self.cfg.resume else None
        if latest is not None:
            if self.dist.is_main:
                self._check_resume_config(requested)
            self.load_checkpoint(latest)
            if self.dist.is_main:  # forget metrics logged after the checkpoint
                self.history = self.rundir.metrics_until(self.step)
                self.rundir.write_config(requested)
        elif self.dist.is_main:
            if self.rundir.holds_run() and not self.cfg.resume:
                raise FileExistsError(
                    f"{self.run_dir} already holds a run; pass --resume to continue it or choose another --output"
                )
            self.rundir.write_config(requested)
            self.rundir.rewrite_metrics([])
        vdist.barrier()

    # ---------------------------------------------------------------- the loop
    def fit(self) -> PretrainResult:
        """Train until ``total_steps``; checkpoint every ``save_every`` updates and at epoch ends.

        Validation (keeping the best checkpoint) runs at epoch ends (``val_at_epoch_end``), at every
        interval checkpoint (``val_at_save``; the reference does both), every ``val_every`` updates,
        and at the last update.
        """
        try:
            self._prepare_run_dir()
            return self._train()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

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
            group = self._rank_groups()[self.group_pos]
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


# ---------------------------------------------------------------------------------------- API / CLI
def pretrain(config: PretrainConfig, data=None, model=None) -> PretrainResult:
    """Run (or resume) one pre-training run; under torchrun each process calls this.

    ``data`` and ``model`` are optional ready objects (see :class:`Trainer`); by default the run reads
    ``config.data`` and builds ``config.preset``.
    """
    info = vdist.init_distributed(config.device)
    trainer = Trainer(config, info, data=data, model=model)
    return trainer.fit()


def main(argv=None) -> int:
    """``python -m vclip.pretrain``: exit 0 when trained, 2 on a configuration or data error (one line)."""
    from vclip.bert import resolve_folder
    from vclip.data.formats import DataFormatError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    is_main = os.environ.get("RANK", "0") == "0"
    try:  # everything a user can get wrong is found here, before any training
        command = parse_command_line(argv)
        config = command.settings
        if command.print_config:
            print(json.dumps(config.to_dict(), indent=2))
            return 0
        if is_main:
            sections = "\n".join(f"  {name}: {json.dumps(values)}" for name, values in config.to_dict().items())
            log.info("configuration (recipe %s, then the command line):\n%s", command.config, sections)
        if config.model.init_from:
            resolve_folder(config.model.init_from)  # an unreachable hub name fails now, before the data is read
        trainer = Trainer(config, vdist.init_distributed(config.run.device))
    except (ConfigError, DataFormatError, FileNotFoundError) as error:  # bad input: say what, no traceback
        print(f"error: {error}", file=sys.stderr)
        vdist.cleanup()
        return 2
    try:
        result = trainer.fit()
    except FileExistsError as error:  # an existing run without --resume
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        vdist.cleanup()
    last = [r for r in result.history if r.get("kind") == "train"][-1:]
    val = [r for r in result.history if r.get("kind") == "val"][-1:]
    if is_main:
        print(f"run: {result.run_dir}  steps: {result.final_step}", file=sys.stdout)
        if last:
            print(f"last train loss {last[0]['loss']:.4f}", file=sys.stdout)
        if val:
            print(f"last val loss {val[0]['val_loss']:.4f}", file=sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
