"""The pre-training program: retrieval-augmented contrastive training on overlapped clips.

Paper: VideoCLIP sections 3.3-3.4 (overlapped clips, retrieval-augmented training) and 4.1
(pre-training on HowTo100M: 8 GPUs x 512 pairs, Adam, lr 5e-5, 1000 warm-up updates, 25 epochs).

Reference (fairseq ``examples/MMPT``; ``spec/videoclip_reference.md`` sections 2-5):
``projects/retri/videoclip/how2.yaml`` (hyper-parameters), ``mmpt/tasks/retritask.py`` (the retrieval
pass before each epoch, the group -> 512-pair reshape), ``mmpt/losses/nce.py::MMContraLoss`` (the
loss), fairseq's ``adam`` optimiser and ``polynomial_decay`` scheduler, and its checkpointing
(``checkpoint_best`` by lowest validation loss on How2 val groups).

Programs::

    python -m vclip.pretrain --data DIR --preset tiny --output runs/tiny --steps 300
    torchrun --nproc-per-node 8 -m vclip.pretrain --config vclip/configs/paper.json --data DIR --output RUN

Python API (used by the notebooks)::

    from vclip.pretrain import PretrainConfig, pretrain
    result = pretrain(PretrainConfig(data=..., output=..., preset="tiny", steps=200))
    result.run_dir, result.history

Run directory (``docs/design.md``)::

    <run>/config.json, <run>/metrics.jsonl,
    <run>/checkpoints/step_XXXXXX/{model.safetensors, config.json, trainer_state.pt}, <run>/checkpoints/LATEST

Everything random derives from ``--seed`` through ``numpy.random.SeedSequence`` keys (epoch, rank,
group position, step), so an interrupted run resumed from its last checkpoint equals the uninterrupted
run: the checkpoint holds the model, optimiser, scheduler, gradient scaler, the epoch's groups and the
position in them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vclip import distributed as vdist
from vclip.progress import progress_bar
from vclip.retrieval import random_groups, retrieval_groups, video_vectors
from vclip.sampling import ALIGNMENTS, SamplingConfig, sample_group

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
STATE_NAME = "trainer_state.pt"
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
SCOPES = ("rank", "global")


@dataclass
class PretrainConfig:
    """Every setting of a pre-training run. Defaults are the reference's (``how2.yaml``)."""

    data: str = ""  # a pre-training folder (features/, raw_caption.json, train.lst, val.lst)
    output: str = ""  # the run directory
    preset: str = "tiny"  # model preset: tiny | minilm | paper
    steps: int | None = None  # train for this many updates (epochs are cycled) ...
    epochs: int | None = None  # ... or this many epochs (the paper: 25); default 1 epoch
    seed: int = 0
    # sampling (spec 3): a group = V videos x C clips = one batch of V*C pairs per rank
    videos_per_group: int = 32
    clips_per_video: int = 16
    alignment: str = "overlap"  # "exact" is the paper's ablation (video span = text span)
    # retrieval augmentation (spec 4)
    retrieval: bool = True  # False = random groups (the paper's ablation)
    num_candidates: int = 64  # neighbours searched per query video
    retrieval_scope: str = "rank"  # "rank": one index per rank over its share (reference); "global": one over all
    index: str = "auto"  # auto | flat | ivf | ivf512 (vclip.retrieval.build_index)
    exact_max_videos: int = 50_000  # "auto" uses an exact index up to this many videos
    nprobe: int = 1  # IVF lists searched (reference: faiss default 1)
    embed_videos_per_batch: int = 32  # videos per forward pass of the embedding pass
    embed_clips_per_video: int | None = None  # clips averaged per video vector; None = clips_per_video (reference)
    # optimisation (spec 5)
    lr: float = 5e-5
    warmup_updates: int = 1000
    total_num_update: int | None = None  # linear decay reaches 0 here; None = this run's total updates
    betas: tuple[float, float] = (0.9, 0.98)
    adam_eps: float = 1e-8
    weight_decay: float = 0.0
    clip_norm: float = 2.0
    precision: str = "auto"  # auto = fp16 autocast + GradScaler on GPU (reference --fp16), fp32 on CPU
    global_negatives: bool = False  # contrast against every rank's pairs (reference: GPU-local)
    # bookkeeping
    log_every: int = 10
    save_every: int = 1024  # the reference's save_interval_updates
    keep_last: int = 2  # interval checkpoints kept (the best by validation loss is kept too)
    val_every: int = 0  # validate every N updates; 0 = at the end of each epoch and of the run
    val_max_groups: int = 64  # cap on validation groups (val.lst may be large)
    eval_every: int = 0  # zero-shot evaluation every N updates (0 = never)
    eval_data: str = ""  # a synthetic-world root or an evaluation folder
    eval_task: str = "youcook2"
    device: str | None = None  # None: cuda when available
    resume: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)
        if self.alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {self.alignment!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.retrieval_scope not in SCOPES:
            raise ValueError(f"retrieval_scope must be one of {SCOPES}, got {self.retrieval_scope!r}")
        if self.steps is not None and self.epochs is not None:
            raise ValueError(f"give --steps or --epochs, not both (got steps={self.steps}, epochs={self.epochs})")
        for name in ("videos_per_group", "clips_per_video", "num_candidates", "log_every", "save_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.videos_per_group < 2 and self.clips_per_video < 2:
            raise ValueError("a group needs at least 2 pairs to contrast (videos_per_group x clips_per_video >= 2)")
        if self.eval_every and not self.eval_data:
            raise ValueError("eval_every needs eval_data (a synthetic-world root or an evaluation folder)")

    def sampling(self) -> SamplingConfig:
        return SamplingConfig(alignment=self.alignment)


def load_config_file(path: str | os.PathLike) -> dict:
    """Read a JSON configuration: a name in vclip/configs (e.g. "paper") or a path to a .json file."""
    candidate = Path(path)
    if not candidate.exists() and (CONFIG_DIR / f"{path}.json").exists():
        candidate = CONFIG_DIR / f"{path}.json"
    if not candidate.exists():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
        raise FileNotFoundError(f"configuration {path!r} not found (ready configurations: {known})")
    with open(candidate, encoding="utf-8") as handle:
        values = json.load(handle)
    values = {k: v for k, v in values.items() if not k.startswith("_")}  # "_comment" keys
    known = {f.name for f in dataclasses.fields(PretrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{candidate}: unknown settings {unknown}; known: {sorted(known)}")
    return values


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
        :class:`vclip.sampling.ArrayVideos`; ``model``: None (``VideoCLIP.from_preset(config.preset)``)."""
        from vclip.model import VideoCLIP

        self.cfg = config
        default_device = "cuda" if torch.cuda.is_available() else "cpu"
        self.dist = dist or vdist.DistInfo(device=torch.device(config.device or default_device))
        self.device = self.dist.device
        store, train_ids, val_ids = data if data is not None else open_pretrain_data(config.data)
        self.store, self.train_ids, self.val_ids = store, list(train_ids), list(val_ids)
        if not self.train_ids:
            raise ValueError(f"{config.data}: no training videos")
        self.run_dir = Path(config.output)
        if not config.output:
            raise ValueError("output (the run directory) is required")

        torch.manual_seed(config.seed)  # identical initialisation on every rank
        self.model = (model or VideoCLIP.from_preset(config.preset)).to(self.device).train()
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
            raise ValueError(
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

    # ---------------------------------------------------------------- setup helpers
    def _autocast_dtype(self) -> torch.dtype | None:
        p = self.cfg.precision
        if self.device.type != "cuda":
            if p in ("fp16", "bf16"):
                raise ValueError(f"precision {p!r} is for GPUs only; this run is on {self.device}")
            return None
        return {"auto": torch.float16, "fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}[p]

    def _shares(self, epoch: int) -> list[np.ndarray]:
        """Each rank's share of the training videos for the embedding pass (a DistributedSampler)."""
        perm = _rng(self.cfg.seed, _SHARES, epoch).permutation(len(self.train_ids))
        return [perm[r :: self.dist.world_size] for r in range(self.dist.world_size)]

    def _count_groups(self) -> int:
        v = self.cfg.videos_per_group
        if self.cfg.retrieval and self.cfg.retrieval_scope == "rank":
            return sum(len(s) // v for s in self._shares(0))
        return len(self.train_ids) // v

    # ---------------------------------------------------------------- data plan
    def plan_epoch(self, epoch: int) -> tuple[list[list[int]], dict]:
        """All ranks' groups for ``epoch`` (indices into train_ids), shuffled; plus retrieval stats."""
        cfg, rank = self.cfg, self.dist.rank
        info: dict = {"epoch": epoch}
        if not cfg.retrieval:
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
                cfg.sampling(),
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
        return sample_group(self.store, ids, self.cfg.clips_per_video, rng, self.cfg.sampling())

    # ---------------------------------------------------------------- one update
    def forward_backward(self, batch) -> torch.Tensor:
        """The loss of this rank's V*C pairs, with gradients left in ``.grad`` (DDP-averaged over ranks)."""
        from vclip.loss import contrastive_loss

        batch = batch.to(self.device)
        net = self.ddp or self.model
        with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
            out = net(batch.vfeats, batch.vmask, batch.input_ids, batch.attention_mask)
        loss = contrastive_loss(out.pooled_video.float(), out.pooled_text.float(), gather=self.cfg.global_negatives)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        return loss.detach()

    def train_step(self, batch) -> dict:
        """One update: forward, loss, backward, unscale, clip to ``clip_norm``, Adam step, lr schedule."""
        torch.manual_seed(_stable_seed(self.cfg.seed, _DROPOUT, self.step, self.dist.rank))  # dropout
        loss = self.forward_backward(batch)
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_norm)
        self.scaler.step(self.optimizer)  # skipped (and the scale lowered) on inf/NaN gradients under fp16
        self.scaler.update()
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        self.step += 1
        return {"loss": float(loss), "grad_norm": float(grad_norm), "lr": lr}

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
                batch = sample_group(self.store, ids, cfg.clips_per_video, _rng(cfg.seed, _VAL, g), cfg.sampling())
                batch = batch.to(self.device)
                with torch.autocast(
                    self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None
                ):
                    out = self.model(batch.vfeats, batch.vmask, batch.input_ids, batch.attention_mask)
                total += float(contrastive_loss(out.pooled_video.float(), out.pooled_text.float()))
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
            with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    def state_dict(self) -> dict:
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
            "config": dataclasses.asdict(self.cfg),
        }

    def save_checkpoint(self) -> Path | None:
        """Write checkpoints/step_XXXXXX atomically (temp dir, fsync, rename), then LATEST."""
        vdist.barrier()
        path = None
        if self.dist.is_main:
            ckdir = self.run_dir / "checkpoints"
            ckdir.mkdir(parents=True, exist_ok=True)
            name = f"step_{self.step:06d}"
            tmp = ckdir / f".tmp_{name}"
            shutil.rmtree(tmp, ignore_errors=True)
            self.model.save_pretrained(tmp)
            torch.save(self.state_dict(), tmp / STATE_NAME)
            for f in tmp.iterdir():
                _fsync_file(f)
            _fsync_dir(tmp)
            path = ckdir / name
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
            _atomic_write(ckdir / "LATEST", name + "\n")
            if self.best_step >= 0:
                _atomic_write(ckdir / "BEST", f"step_{self.best_step:06d}\n")
            self._prune(ckdir)
        vdist.barrier()
        return path

    def _prune(self, ckdir: Path) -> None:
        keep = {f"step_{self.best_step:06d}"} if self.best_step >= 0 else set()
        steps = sorted(p.name for p in ckdir.glob("step_*") if p.is_dir())
        keep.update(steps[-self.cfg.keep_last :])
        for name in steps:
            if name not in keep:
                shutil.rmtree(ckdir / name, ignore_errors=True)

    def load_checkpoint(self, path: Path) -> None:
        from safetensors.torch import load_file

        state = torch.load(path / STATE_NAME, map_location="cpu", weights_only=False)
        if state["world_size"] != self.dist.world_size:
            raise ValueError(
                f"{path}: saved with {state['world_size']} rank(s), resumed with {self.dist.world_size}; "
                "exact resume needs the same number of ranks"
            )
        self.model.load_weights(load_file(path / "model.safetensors"), source=str(path))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch, self.group_pos = state["step"], state["epoch"], state["group_pos"]
        self.epoch_groups = state["epoch_groups"]
        self.best_val, self.best_step = state["best_val"], state["best_step"]
        torch.set_rng_state(state["torch_rng"])
        log.info("resumed from %s at step %d (epoch %d, group %d)", path, self.step, self.epoch, self.group_pos)

    def _prepare_run_dir(self) -> None:
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(self.cfg), indent=2) + "\n")
        latest = self.run_dir / "checkpoints" / "LATEST"
        if self.cfg.resume and latest.exists():
            self.load_checkpoint(self.run_dir / "checkpoints" / latest.read_text().strip())
            if self.dist.is_main:  # forget metrics logged after the checkpoint
                self.history = _truncate_metrics(self.run_dir / "metrics.jsonl", self.step)
        elif self.dist.is_main:
            if (self.run_dir / "metrics.jsonl").exists() or latest.exists():
                if not self.cfg.resume:
                    raise FileExistsError(
                        f"{self.run_dir} already holds a run; pass --resume to continue it or choose another --output"
                    )
            (self.run_dir / "metrics.jsonl").write_text("")
        vdist.barrier()

    # ---------------------------------------------------------------- the loop
    def fit(self) -> PretrainResult:
        """Train until ``total_steps``; validate and checkpoint at each epoch end, and every N updates."""
        cfg = self.cfg
        self._prepare_run_dir()
        bar = progress_bar(total=self.total_steps, initial=self.step, desc="pretrain", enabled=cfg.progress and self.dist.is_main)
        window_pairs, window_t = 0, time.perf_counter()
        last_saved = self.step if self.cfg.resume else -1
        while self.step < self.total_steps:
            if self.epoch_groups is None:  # the retrieval pass, before every epoch including the first
                t0 = time.perf_counter()
                self.epoch_groups, info = self.plan_epoch(self.epoch)
                info.update(kind="epoch_plan", step=self.step, groups=len(self.epoch_groups), seconds=time.perf_counter() - t0)
                self._log(info)
            group = self._rank_groups()[self.group_pos]
            batch = self.batch_for(self.epoch, self.group_pos, group)
            record = self.train_step(batch)
            self.group_pos += 1
            window_pairs += len(batch) * self.dist.world_size
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.3f}", epoch=self.epoch)
            if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                elapsed = time.perf_counter() - window_t
                loss = vdist.all_reduce_mean(record["loss"], self.device)
                self._log(
                    {"kind": "train", "step": self.step, "epoch": self.epoch, "loss": loss, "lr": record["lr"],
                     "grad_norm": record["grad_norm"], "pairs_per_s": window_pairs / max(elapsed, 1e-9)}
                )
                window_pairs, window_t = 0, time.perf_counter()
            if cfg.eval_every and self.step % cfg.eval_every == 0:
                self._log({"kind": "eval", "step": self.step, "task": cfg.eval_task, **self.evaluate()})
            epoch_end = self.group_pos >= self.steps_per_epoch
            validate = (cfg.val_every and self.step % cfg.val_every == 0) or (epoch_end and not cfg.val_every)
            if validate or self.step == self.total_steps:
                self._validate_and_log()
            if epoch_end:
                self.epoch, self.group_pos, self.epoch_groups = self.epoch + 1, 0, None
            if validate or epoch_end or self.step % cfg.save_every == 0 or self.step == self.total_steps:
                self.save_checkpoint()  # after every validation, so that BEST names a checkpoint
                last_saved = self.step
        bar.close()
        if last_saved != self.step:  # resumed a finished run, or total_steps lowered
            self.save_checkpoint()
        return PretrainResult(self.run_dir, self.history, self.step)

    def _validate_and_log(self) -> None:
        val = self.validate()
        if val is None:
            return
        if val < self.best_val:
            self.best_val, self.best_step = val, self.step
        self._log({"kind": "val", "step": self.step, "epoch": self.epoch, "val_loss": val})


# ---------------------------------------------------------------------------------------- files
def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # directories cannot be opened on some platforms
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _truncate_metrics(path: Path, step: int) -> list[dict]:
    """Keep the metric records logged up to the checkpoint of ``step`` (the rest are logged again).

    At a checkpoint's own step only the next epoch's plan comes after the save, so it is dropped.
    """
    if not path.exists():
        return []
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            after_save = record.get("kind") == "epoch_plan"
            if record.get("step", 0) < step or (record.get("step", 0) == step and not after_save):
                kept.append(record)
    path.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    return kept


# ---------------------------------------------------------------------------------------- API / CLI
def pretrain(config: PretrainConfig, data=None, model=None) -> PretrainResult:
    """Run (or resume) one pre-training run; under torchrun each process calls this.

    ``data`` and ``model`` are optional ready objects (see :class:`Trainer`); by default the run reads
    ``config.data`` and builds ``config.preset``.
    """
    info = vdist.init_distributed(config.device)
    trainer = Trainer(config, info, data=data, model=model)
    return trainer.fit()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m vclip.pretrain",
        description="VideoCLIP pre-training: overlapped clips, retrieval-augmented groups (torchrun for DDP).",
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument("--config", help="a JSON configuration: a file, or a name in vclip/configs (paper, teaching)")
    for f in dataclasses.fields(PretrainConfig):
        if f.name in ("retrieval", "resume", "progress", "global_negatives", "betas"):
            continue
        flag = "--" + f.name.replace("_", "-")
        typ = str(f.type)  # annotations are strings here ("int | None", "float", ...)
        conv = int if typ.startswith("int") else float if typ.startswith("float") else str
        p.add_argument(flag, dest=f.name, type=conv, help=f"(default: {f.default})")
    p.add_argument("--betas", type=float, nargs=2, help="Adam betas (default: 0.9 0.98)")
    p.add_argument("--no-retrieval", dest="retrieval", action="store_false", help="random groups (ablation)")
    p.add_argument("--global-negatives", dest="global_negatives", action="store_true", help="all-gather negatives")
    p.add_argument("--resume", action="store_true", help="continue the run in --output from checkpoints/LATEST")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def config_from_args(argv=None) -> PretrainConfig:
    args = vars(build_parser().parse_args(argv))
    values = load_config_file(args.pop("config")) if "config" in args else {}
    values.update(args)
    return PretrainConfig(**values)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(argv)
        result = pretrain(config)
    except (ValueError, FileNotFoundError, FileExistsError) as error:  # bad input: say what, no traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        vdist.cleanup()
    last = [r for r in result.history if r.get("kind") == "train"][-1:]
    val = [r for r in result.history if r.get("kind") == "val"][-1:]
    if os.environ.get("RANK", "0") == "0":
        print(f"run: {result.run_dir}  steps: {result.final_step}", file=sys.stdout)
        if last:
            print(f"last train loss {last[0]['loss']:.4f}", file=sys.stdout)
        if val:
            print(f"last val loss {val[0]['val_loss']:.4f}", file=sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
