"""Fine-tuning a pre-trained VideoCLIP on one downstream task, on the loop pre-training uses.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (every task zero-shot *and* fine-tuned). Reference:
fairseq ``examples/MMPT``, ``projects/retri/videoclip/{youcook,vtt,vttqa,coin,crosstask}_videoclip.yaml``
(one recipe per task: restore the pre-trained ``checkpoint_best.pt``, reset the optimiser, Adam
(0.9, 0.98), lr 5e-5, 122 warm-up updates of fairseq's ``polynomial_decay`` toward 1,000,000 updates,
clip norm 2.0), the losses of ``mmpt/losses/`` and the task models of ``mmpt/models/mmfusion.py``
(:mod:`vclip.tasks.heads`), ``mmpt_cli/predict.py`` (model selection) and fairseq's batch iterator.

=============  =====================================  ======  ======  ========================
task           loss (:mod:`vclip.tasks.heads`)         batch   epochs  data (per epoch)
=============  =====================================  ======  ======  ========================
``youcook2``   text-to-video InfoNCE                   128     10      training clips
``msrvtt``     text-to-video InfoNCE                   224     10      9k videos x 20 (``dup``),
                                                                       one random caption each
``msrvtt_qa``  video-to-text InfoNCE                   128     5       as msrvtt
``coin``       cross-entropy of a new Linear head      1 video 8       windows of 32 s every 8 s
``crosstask``  binary cross-entropy, seconds x steps   1 video 5       windows of 32 s every 16 s
=============  =====================================  ======  ======  ========================

The recipes are JSON files, as pre-training's: ``vclip/configs/finetune/paper.json`` is that table,
``teaching.json`` sizes it for a laptop CPU (:func:`recipe`, :func:`load_finetune_recipe`).
Everything a task contributes (its training split, batches, head, loss and evaluation) is read
through its registered hooks (``TASKS[task].finetuning``, :mod:`vclip.tasks.training`), never by its
name. :class:`FineTuner` is a :class:`~vclip.training.loop.TrainingLoop`: the optimiser, schedule,
clipping, precision (bf16/fp16 autocast), DDP, seeding, logging, checkpoints and ``--resume`` are
pre-training's; the fine-tuning objective (:class:`FinetuneObjective`) and its epoch plan
(:class:`Batches`, streamed) are plugged in.

Model selection (``select``): ``val`` (default) keeps the epoch with the lowest loss on the
validation split (held-out training videos, only in this mode; CrossTask's ``videos_val.csv``);
``test`` is the reference's rule, per task (``TaskFinetuning.test_selection``): YouCook2, MSR-VTT
and QA score every epoch's checkpoint on the test set and report the best (``predict.py``); COIN
and CrossTask keep one checkpoint, ``checkpoint_best.pt``, the epoch with the lowest loss on their
validation split, which in the reference is the test split. Both select on the test set
(optimistic), and every report of such a run says so. ``last`` keeps the final epoch.

Run directory (``vclip.evaluate --checkpoint RUN`` loads it and reports fine-tuned beside zero-shot),
the pre-training layout (:mod:`vclip.rundir`, ``docs/reliability.md``)::

    <run>/config.json          the FinetuneConfig
    <run>/finetune.json        task, init, selection, every epoch's losses, test metrics fine-tuned
                               and zero-shot (the init model, same test split), the training list
    <run>/metrics.jsonl        epoch plans (same-video pairs per batch), train and epoch records
    <run>/checkpoints/step_XXXXXX/{model.safetensors, config.json, trainer_state.pt[, head.*]}
    <run>/checkpoints/LATEST   the last epoch's checkpoint (``--resume`` continues from it)
    <run>/checkpoints/BEST     the selected epoch's checkpoint (the only other one kept)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from vclip import distributed as vdist
from vclip.config import CONFIG_DIR, _check_device, checks_deferred, read_recipe_file, recipe_path
from vclip.errors import ConfigError
from vclip.rundir import (
    atomic_write_text,
)
from vclip.tasks.common import EvalConfig
from vclip.tasks.training import BATCH_ORDERS, EpochBatches
from vclip.tokenizer import MAX_VIDEO_LEN, load_tokenizer
from vclip.training.checkpoints import RunCheckpoints
from vclip.training.finetuned import (
    SUMMARY_NAME,
    check_init,
    evaluate_finetuned,
    finetune_tasks,
    load_init,
    task_hooks,
)
from vclip.training.loop import TrainingLoop
from vclip.training.update import Optimisation

log = logging.getLogger("vclip.finetune")  # the program's logger: its progress lines are the program's

FINETUNE_CONFIG_DIR = CONFIG_DIR / "finetune"
RECIPES = ("teaching", "paper")
SELECTIONS = ("val", "test", "last")
FINETUNE_DROPOUT_STREAM = 3  # the seeds stream of fine-tuning's dropout (kept from before the loops were one: committed runs replay)


@dataclass
class FinetuneConfig:
    """Every setting of a fine-tuning run. Field defaults are the reference's shared settings; the
    per-task ones come from the named recipe (:func:`recipe`; on the command line, ``--config`` and
    ``--task`` choose it and the defaults ``--help`` shows are that recipe's)."""

    task: str  # the downstream task (a registered task with fine-tuning hooks: youcook2, msrvtt, msrvtt_qa, coin, crosstask)
    init: str = ""  # the pre-trained model: a vclip run directory (its checkpoints/BEST), a checkpoint folder, the reference's checkpoint_best.pt, or a Hugging Face Hub name org/name
    data: str = ""  # the task folder (as for vclip.evaluate --task T --data, with the training split), or a world root holding <task>/
    output: str = ""  # the new run directory (vclip.evaluate --checkpoint takes it)
    config: str = "teaching"  # the recipe: teaching (CPU minutes) or paper (the reference's projects/retri/videoclip/*_videoclip.yaml), vclip/configs/finetune/<name>.json
    seed: int = 0  # head initialisation, validation videos, batch order, captions drawn, dropout
    epochs: int = 10  # passes over the training split (validation and selection after each)
    batch_size: int = 128  # clips per update (youcook2, msrvtt, msrvtt_qa); coin and crosstask take 1 video
    batches: Literal["fixed", "random"] = "fixed"  # fixed: consecutive slices of the list, their order shuffled per epoch (the reference: fairseq's batches over datasets in list order); random: items shuffled, then sliced
    dup: int = 1  # MSR-VTT: each training video appears dup times per epoch, each with a random caption
    train_stride: int = 16  # coin, crosstask: training windows start every train_stride seconds
    window: int = MAX_VIDEO_LEN  # coin, crosstask: window length in seconds
    lr: float = 5e-5  # peak learning rate (Adam)
    warmup_updates: int = 122  # linear warm-up from lr/warmup_updates to lr
    total_num_update: int | None = 1_000_000  # the linear decay reaches 0 here (reference: 1,000,000, never reached); None: this run's last update
    betas: tuple[float, float] = (0.9, 0.98)  # Adam betas
    adam_eps: float = 1e-8  # Adam epsilon
    weight_decay: float = 0.0  # Adam weight decay (none in the reference)
    clip_norm: float = 2.0  # gradient norm clip
    select: Literal["val", "test", "last"] = "val"  # model selection: val (lowest validation loss), test (the reference's rule: on the TEST set, optimistic), last
    val_fraction: float = 0.1  # select val: training videos held out for validation (not CrossTask: its videos_val.csv); test and last train on every training video
    eval_batch_size: int = 128  # clips per forward pass of the test evaluations
    log_every: int = 10  # updates between training-loss records in metrics.jsonl
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"  # as pre-training's: auto = fp16 autocast + loss scaling on GPU (the reference's --fp16), fp32 on CPU; bf16 also on a CPU
    tensorboard: bool = False  # also write metrics.jsonl's records as TensorBoard scalars to <run>/tensorboard (pip install -e '.[tensorboard]')
    device: str | None = None  # cpu, cuda, cuda:N (None: cuda when available; torchrun gives each rank its GPU)
    resume: bool = False  # continue the run in output from checkpoints/LATEST (the last finished epoch), with the run's settings
    progress: bool = True  # progress bar (--no-progress)

    # The shared loop's schedule (vclip.training.loop): validate, select and save at every epoch end.
    save_every = 1 << 62
    val_every = 0
    val_at_epoch_end = True
    val_at_save = False
    eval_every = 0
    eval_task = ""
    keep_last = 1  # the last epoch's checkpoint (to resume) and the selected one are kept

    def __post_init__(self) -> None:
        if checks_deferred():  # parse_command_line checks the resolved values once, in one line
            return
        self.betas = tuple(float(b) for b in self.betas)
        hooks = task_hooks(self.task)
        recipe_path(self.config, FINETUNE_CONFIG_DIR)
        if self.select not in SELECTIONS:
            raise ConfigError(f"select must be one of {', '.join(SELECTIONS)}, got {self.select!r}")
        if self.batches not in BATCH_ORDERS:
            raise ConfigError(f"batches must be one of {', '.join(BATCH_ORDERS)}, got {self.batches!r}")
        for name in ("epochs", "batch_size", "dup", "train_stride", "log_every", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < hooks.min_batch_size:
            raise ConfigError(f"{self.task}: a contrastive batch needs at least {hooks.min_batch_size} clips, got "
                              f"batch_size={self.batch_size}")
        if not 1 <= self.window <= MAX_VIDEO_LEN:
            raise ConfigError(f"window must be in [1, {MAX_VIDEO_LEN}], got {self.window}")
        if not self.lr > 0 or self.clip_norm <= 0:
            raise ConfigError(f"lr and clip_norm must be > 0, got {self.lr} and {self.clip_norm}")
        if self.warmup_updates < 0 or (self.total_num_update is not None and self.total_num_update < 1):
            raise ConfigError(f"warmup_updates must be >= 0 and total_num_update >= 1, got {self.warmup_updates} "
                              f"and {self.total_num_update}")
        if self.select == "val" and hooks.val_source == "held-out training videos" and not 0 < self.val_fraction < 1:
            raise ConfigError(f"select='val' needs 0 < val_fraction < 1, got {self.val_fraction}")
        if self.device is not None:
            _check_device(self.device)
        if self.tensorboard:
            from vclip.tensorboard_log import require_tensorboard

            require_tensorboard("--tensorboard")

    @property
    def held_out_fraction(self) -> float:
        """The fraction of training videos held out: ``val_fraction`` under ``select val``, else 0 (the
        reference trains on every training video)."""
        return self.val_fraction if self.select == "val" else 0.0


# ---------------------------------------------------------------------------------------- recipes
def load_finetune_recipe(name_or_path: str = "teaching") -> dict[str, dict]:
    """``{task: settings}`` of a fine-tuning recipe file (vclip/configs/finetune/<name>.json).

    Its top-level settings apply to every task, a task's object overrides them (a task the file does
    not name gets the top-level settings alone); an unknown key is a :class:`ConfigError` naming it
    and the file, as pre-training's recipes (:func:`vclip.config.load_recipe`).
    """
    path = recipe_path(name_or_path, FINETUNE_CONFIG_DIR)
    values = read_recipe_file(path)
    fields = {f.name for f in dataclasses.fields(FinetuneConfig)} - {"task", "config"}
    tasks = finetune_tasks()
    shared, per_task = {}, {}
    for key, value in values.items():
        if key in tasks:
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: {key!r} must be an object of settings, got {value!r}")
            unknown = sorted(set(value) - fields)
            if unknown:
                raise ConfigError(f"{path}: unknown setting {key}.{unknown[0]}; a task has {sorted(fields)}")
            per_task[key] = value
        elif key in fields:
            shared[key] = value
        else:
            raise ConfigError(f"{path}: unknown key {key!r}; expected a setting ({sorted(fields)}) or a task "
                              f"({', '.join(tasks)})")
    return {task: {**shared, **per_task.get(task, {})} for task in tasks}


def recipe(task: str, config: str = "teaching", **overrides) -> FinetuneConfig:
    """The named recipe of ``task`` (``teaching`` or ``paper``) with ``overrides`` on top."""
    task_hooks(task)
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(FinetuneConfig)})
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r}; FinetuneConfig has "
                          f"{[f.name for f in dataclasses.fields(FinetuneConfig)]}")
    settings = load_finetune_recipe(config)[task]
    if isinstance(settings.get("betas"), list):
        settings["betas"] = tuple(settings["betas"])
    return FinetuneConfig(**{"task": task, "config": config, **settings, **overrides})


# ---------------------------------------------------------------------------------------- objective and plan
class FinetuneObjective(nn.Module):
    """The model, the task's head (COIN) and the task's loss (``TASKS[task].finetuning.loss``);
    ``forward(batch)`` returns the scalar loss, so that DistributedDataParallel wraps one module whatever
    the task."""

    def __init__(self, hooks, model, head: nn.Module | None = None):
        super().__init__()
        self.hooks, self.model, self.head = hooks, model, head

    def forward(self, batch: dict) -> torch.Tensor:
        return self.hooks.loss(self.model, self.head, batch)


class FinetuneLoss:
    """The shared loop's objective for fine-tuning (:class:`vclip.training.update.Optimisation`): move a
    batch to the device and return ``net(batch)`` under the run's autocast."""

    dropout_stream = FINETUNE_DROPOUT_STREAM
    fused_adam = None  # torch's default Adam implementation, as fine-tuning had before the loops were one

    def __call__(self, net, module, batch: dict, device, autocast):
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast():
            loss = net(batch)
        return loss, {}


class Batches:
    """A split's batches of one epoch on one rank, through the task's hook, streamed (:class:`EpochBatches`)."""

    def __init__(self, split, config: FinetuneConfig, tokens: dict[str, list[int]], hooks=None):
        self.split, self.cfg, self.tokens = split, config, tokens
        self.hooks = hooks or task_hooks(config.task)

    def epoch(self, epoch: int, rank: int = 0, world: int = 1, train: bool = True) -> EpochBatches:
        return self.hooks.batches(self.split, self.cfg, self.tokens, epoch, rank, world, train)

    def count(self, rank: int = 0, world: int = 1) -> int:
        """Training batches per epoch on ``rank`` (nothing is built)."""
        return self.hooks.batch_count(self.split, self.cfg, rank, world)


def _tokenize_all(splits) -> dict[str, list[int]]:
    texts = sorted({t for split in splits if split is not None
                    for t in (split.texts() if hasattr(split, "captions") else split.all_texts())})
    if not texts:
        return {}
    ids = load_tokenizer()(texts, add_special_tokens=False)["input_ids"]
    return dict(zip(texts, ids))


def pair_statistics(counts: list[int]) -> dict:
    """Same-video pairs per batch of an epoch: their mean, maximum and total, and the batches counted."""
    return {"batches": len(counts), "mean_per_batch": float(np.mean(counts)) if counts else 0.0,
            "max_per_batch": int(max(counts, default=0)), "total": int(sum(counts))}


# ---------------------------------------------------------------------------------------- the run
@dataclass
class FinetuneResult:
    run_dir: Path
    summary: dict = field(default_factory=dict)


SELECTION_NOTES = {
    "val": "selected by the lowest loss on the validation split (held-out training videos; CrossTask: videos_val.csv)",
    "test": "selected on the TEST set (the reference's predict.py rule: every epoch scored on test, the best "
            "reported): the reported test numbers are optimistic",
    "test_loss": "selected on the TEST set (the reference's checkpoint_best.pt: the epoch of lowest loss on its "
                 "validation split, which is the test split): the reported test numbers are optimistic",
    "last": "the last epoch (no selection)",
}


class FineTuner(TrainingLoop):
    """One (per-rank) fine-tuning process on the shared loop: model, head, the task's batches and loss,
    selection, and the run directory (checkpoints, ``--resume``) of :class:`TrainingLoop`."""

    progress_name = "finetune"
    logger = log

    def __init__(self, config: FinetuneConfig, dist: vdist.DistInfo | None = None):
        from vclip.tasks import resolve_task_folder

        cfg = config
        if not cfg.output:
            raise ConfigError("output (the run directory, --output) is required")
        if not cfg.init:
            raise ConfigError("init (a pre-trained run, checkpoint folder or checkpoint_best.pt, --init) is required")
        # a missing path or a Hub name is refused (offline) or fetched before any data is read or written
        early = load_init(cfg.init) if not Path(cfg.init).exists() else None
        default_device = "cuda" if torch.cuda.is_available() else "cpu"
        dist = dist or vdist.DistInfo(device=torch.device(cfg.device or default_device))
        super().__init__(cfg, dist, RunCheckpoints(cfg, dist))
        self.hooks = task_hooks(cfg.task)
        self.folder = resolve_task_folder(cfg.task, cfg.data)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"--data {cfg.data}: no such folder")
        read = lambda split: self.hooks.read_split(self.folder, split, cfg.held_out_fraction, cfg.seed)  # noqa: E731
        self.train_split = read("train")
        self.test_loss_selection = cfg.select == "test" and self.hooks.test_selection == "lowest_test_loss"
        self.val_split = read("val") if cfg.select == "val" else read("test") if self.test_loss_selection else None
        for split in (self.train_split, self.val_split):
            if split is not None and len(split) == 0:
                raise ConfigError(f"{self.folder}: the {cfg.task} {split.split} split is empty "
                                  f"({split.n_items} listed, {len(split.missing)} without features)")
            if split is not None and split.missing:
                log.warning("%s %s split: %d items without features skipped (e.g. %s)", cfg.task, split.split,
                            len(split.missing), split.missing[:3])
        tokens = _tokenize_all([self.train_split, self.val_split])
        self.train_batches = Batches(self.train_split, cfg, tokens, self.hooks)
        self.val_batches = Batches(self.val_split, cfg, tokens, self.hooks) if self.val_split is not None else None

        torch.manual_seed(cfg.seed)  # the same head on every rank
        self.model, self.init_path = early or load_init(cfg.init)
        check_init(self.model, cfg.init, self.init_path, self.train_split.feature_width(), len(load_tokenizer()))
        self.model.to(self.device).train()
        self.head = self.hooks.new_head(self.model, self.train_split)
        if self.head is not None:
            self.head.to(self.device)
        self.objective = FinetuneObjective(self.hooks, self.model, self.head)
        # Every rank gathers the batch counts before any check, so that all of them raise together (a rank
        # that raised alone would leave the others waiting in the gather); then every rank makes the same
        # number of updates (the fewest any rank has), one DDP all-reduce each.
        counts = vdist.all_gather_objects(self.train_batches.count(self.dist.rank, self.dist.world_size))
        if min(counts) < 1:
            raise ConfigError(f"{cfg.task}: the training split gives no batch on rank {counts.index(min(counts))} "
                              f"({len(self.train_split)} items for {self.dist.world_size} ranks)")
        self.steps_per_epoch = min(counts)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.update = Optimisation(cfg, self.objective, self.dist, self.total_steps, FinetuneLoss())
        self.net = self.update.ddp or self.objective
        self.epochs: list[dict] = []  # one summary per finished epoch (a checkpoint stores them)
        self.zero_shot: dict | None = None
        self._losses: list[float] = []
        self._pairs: dict = {}
        self._started = time.perf_counter()

    def on_start(self) -> None:
        if self.train_split.source:  # which training list, and how many videos (after the run is accepted)
            log.info("%s %s", self.cfg.task, self.train_split.source)

    @property
    def precision(self):
        """Pre-training's :class:`vclip.training.update.Precision` (autocast, fp16 loss scaling)."""
        return self.update.precision

    # ---------------------------------------------------------------- the loop's hooks
    def plan_epoch(self, epoch: int):
        if self.zero_shot is None:  # the init model on the test split, once (a resumed run has it)
            self.zero_shot = self.test_metrics(zero_shot=True)
        batches = self.train_batches.epoch(epoch, self.dist.rank, self.dist.world_size)[: self.steps_per_epoch]
        self._pairs = pair_statistics(batches.same_video_pairs)
        self._losses = []
        return batches, {"epoch": epoch, "batches": len(batches), "batch_order": self.cfg.batches,
                         "same_video_pairs": self._pairs}

    def batch_at(self, position: int) -> dict:
        return self.epoch_groups[position]  # built now (EpochBatches)

    def batch_pairs(self, batch) -> int:
        return int(batch["vfeats"].shape[0])

    def train_step(self, batch: dict) -> dict:
        """One update of the shared loop; ``loss`` and ``grad_norm`` as floats (a fine-tuning batch is read
        back each update: the epoch's mean training loss is reported)."""
        record = super().train_step(batch)
        record.update(loss=float(record["loss"]), grad_norm=float(record["grad_norm"]))
        self._losses.append(record["loss"])
        return record

    @torch.no_grad()
    def split_loss(self, batches: Batches) -> float:
        """Mean loss over a split's batches (fixed: no shuffle, each clip's first caption), over all ranks."""
        self.objective.eval()
        total, count = 0.0, 0
        try:
            for batch in batches.epoch(0, self.dist.rank, self.dist.world_size, train=False):
                with self.update.autocast():
                    total += float(self.objective({k: v.to(self.device) for k, v in batch.items()}))
                count += 1
        finally:
            self.objective.train()
        sums = vdist.all_gather_objects((total, count))
        total, count = sum(s for s, _ in sums), sum(c for _, c in sums)
        return total / count if count else math.nan

    def validate(self) -> float | None:
        """Mean loss on the validation split (``select val``) or on the test split (``select test`` of a
        task whose reference keeps the lowest-loss checkpoint); None otherwise."""
        return self.split_loss(self.val_batches) if self.val_batches is not None else None

    def test_metrics(self, model=None, head=None, zero_shot: bool = False) -> dict:
        """The task's test-split numbers (rank 0 evaluates): the fine-tuned model, or zero-shot."""
        from vclip.tasks import evaluate_task

        result = None
        if self.dist.is_main:
            config = EvalConfig(batch_size=self.cfg.eval_batch_size, progress=False)
            model = model if model is not None else self.model
            if zero_shot:
                result = evaluate_task(model, self.cfg.task, self.folder, config)
            else:
                result = evaluate_finetuned(model, head if head is not None else self.head, self.cfg.task,
                                            self.folder, config)
            self.model.train()
            result = {"metrics": result.metrics, "n": result.n_evaluated, "notes": result.notes}
        return vdist.broadcast_object(result)

    def _validate_and_log(self) -> None:
        """The epoch's record and its selection score (lower is better), after its last update."""
        from vclip.tasks import TASKS

        cfg = self.cfg
        summary = {"epoch": self.epoch + 1, "step": self.step,
                   "train_loss": vdist.all_reduce_mean(float(np.mean(self._losses)) if self._losses else math.nan,
                                                       self.device),
                   "same_video_pairs": self._pairs}
        if cfg.select == "val":
            summary["val_loss"] = score = self.validate()
        elif self.test_loss_selection:
            summary["test_loss"] = score = self.validate()
        elif cfg.select == "test":
            summary["test"] = self.test_metrics()
            score = -summary["test"]["metrics"][TASKS[cfg.task].metrics[0]]
        else:
            score = -summary["epoch"]
        self._log({"kind": "epoch", **summary})
        if score < self.best_val:
            self.best_val, self.best_step = float(score), self.step  # a float in every mode (the saved state's type)
            summary["selected"] = True
        self.epochs.append(summary)

    def write_checkpoint_extras(self, folder: Path) -> None:
        self.hooks.save_head(self.head, folder)

    def extra_state(self) -> dict:
        return {"finetune_epochs": json.loads(json.dumps(self.epochs)), "zero_shot": self.zero_shot}

    def load_extra_state(self, state: dict, folder: Path) -> None:
        self.epochs, self.zero_shot = list(state["finetune_epochs"]), state["zero_shot"]
        if self.head is not None:  # the head's weights, saved beside the model's (write_checkpoint_extras)
            self.head.load_state_dict(self.hooks.load_head(folder).state_dict())

    def selection_note(self) -> str:
        return SELECTION_NOTES["test_loss" if self.test_loss_selection else self.cfg.select]

    def finish(self) -> FinetuneResult:
        """Score the selected checkpoint on the test split, write ``finetune.json`` and its model card."""
        from vclip.rundir import step_name

        vdist.barrier()
        cfg = self.cfg
        selected = [e for e in self.epochs if e["step"] == self.best_step]
        chosen = selected[-1]["epoch"] if selected else self.epochs[-1]["epoch"]
        folder = self.checkpoints.rundir.checkpoints / step_name(self.best_step)
        # Every rank calls test_metrics: it is a collective (rank 0 evaluates, then broadcasts the result).
        # Only rank 0 loads the selected checkpoint; the other ranks pass None and receive rank 0's numbers.
        model = head = None
        if self.dist.is_main:
            from vclip.checkpoint import load_model

            model = load_model(folder).to(self.device).eval()
            head = self.hooks.load_head(folder)
            head = head.to(self.device) if head is not None else None
        final = self.test_metrics(model, head)
        summary = {
            "task": cfg.task, "config": cfg.config, "init": str(cfg.init),
            "init_checkpoint": self.init_path if isinstance(self.init_path, str) else str(Path(self.init_path).resolve()),
            "loss": self.hooks.loss_name, "select": cfg.select, "selection_note": self.selection_note(),
            "selected_epoch": chosen, "checkpoint": str(folder.relative_to(self.run_dir)),
            "train_source": self.train_split.source, "batches": cfg.batches,
            "same_video_pairs": self.epochs[0]["same_video_pairs"] if self.epochs else {},
            "train_items": len(self.train_split), "val_items": len(self.val_split) if self.val_split else 0,
            "val_split": self.val_split.split if self.val_split else None,
            "train_notes": self.train_split.notes, "updates": self.step, "world_size": self.dist.world_size,
            "epochs": self.epochs, "test": final, "zero_shot_test": self.zero_shot,
            "seconds": time.perf_counter() - self._started,
        }
        if self.dist.is_main:
            from vclip.huggingface import write_model_card
            from vclip.training.export import run_card_fields

            atomic_write_text(self.run_dir / SUMMARY_NAME, json.dumps(summary, indent=1) + "\n")
            write_model_card(folder, self.model, run_card_fields(self.run_dir, self.model.config))  # the test table
        vdist.barrier()
        return FinetuneResult(self.run_dir, summary)


def finetune(config: FinetuneConfig) -> FinetuneResult:
    """Run one fine-tuning run; under torchrun each process calls this."""
    info = vdist.init_distributed(config.device)
    return FineTuner(config, info).fit()


# ---------------------------------------------------------------------------------------- reports
def format_data_line(summary: dict) -> str:
    """One line: the training list (which file, how many videos) and the batches' same-video pairs."""
    pairs = summary.get("same_video_pairs") or {}
    line = summary.get("train_source") or "training list: -"
    if pairs:
        line += (f"; {summary.get('batches')} batches, same-video pairs per batch: mean "
                 f"{pairs['mean_per_batch']:.2f}, max {pairs['max_per_batch']} (epoch 1, this rank)")
    return line


def format_benchmark(payload: dict) -> str:
    """The before/after table of ``benchmarks/results/finetune.json``: zero-shot, and fine-tuned mean +- std
    (min..max) over the seeds."""
    lines = [f"{'task':<10} {'metric':<16} {'zero-shot':>9}  {'fine-tuned (mean +- std, min..max)':<36}"]
    for task, result in payload["results"].items():
        for i, (metric, entry) in enumerate(result["metrics"].items()):
            tuned = entry["fine_tuned"]
            lines.append(f"{task if i == 0 else '':<10} {metric:<16} {entry['zero_shot']:>9.1f}  "
                         f"{tuned['mean']:5.1f} +- {tuned['std']:4.1f} ({tuned['min']:.1f}..{tuned['max']:.1f})")
        if "background_share" in result:
            lines.append(f"{'':<10} {'background share':<16} {result['background_share']:>9.1f}  (predicting "
                         f"background everywhere scores this frame_acc)")
    lines.append(f"seeds {payload['seeds']}; regenerate with: {payload['command']}")
    return "\n".join(lines)


def loss_names() -> dict[str, str]:
    """``{task: its fine-tuning loss}`` of every task with fine-tuning hooks."""
    return {task: task_hooks(task).loss_name for task in finetune_tasks()}


LOSS_NAMES = loss_names()
"""The fine-tuning loss of each built-in task (read from its hooks)."""


__all__ = ["FINETUNE_CONFIG_DIR", "LOSS_NAMES", "SELECTIONS", "Batches", "FineTuner", "FinetuneConfig",
           "FinetuneObjective", "FinetuneResult", "finetune", "format_benchmark", "format_data_line",
           "load_finetune_recipe", "recipe"]
