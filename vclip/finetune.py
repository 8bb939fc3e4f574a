"""``python -m vclip.finetune``: fine-tune a pre-trained VideoCLIP on one downstream task, as the reference's recipes.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (every task zero-shot *and* fine-tuned). Reference:
fairseq ``examples/MMPT``, ``projects/retri/videoclip/{youcook,vtt,vttqa,coin,crosstask}_videoclip.yaml``
(one recipe per task: restore the pre-trained ``checkpoint_best.pt``, reset the optimiser, Adam
(0.9, 0.98), lr 5e-5, 122 warm-up updates of fairseq's ``polynomial_decay`` toward 1,000,000 updates,
clip norm 2.0), the losses of ``mmpt/losses/`` and the task models of ``mmpt/models/mmfusion.py``
(:mod:`vclip.tasks.heads`), and ``mmpt_cli/predict.py`` (model selection).

Usage::

    python -m vclip.finetune --task youcook2 --init runs/pretrain --data data/generated/synthetic/youcook2 --output runs/ft
    python -m vclip.finetune --task coin --init checkpoint_best.pt --data data/coin --output runs/coin --config paper
    torchrun --nproc-per-node 2 -m vclip.finetune --task msrvtt --init RUN --data DIR --output RUN2 --config paper
    python -m vclip.finetune --task coin --config paper --print-config      # the resolved recipe, as JSON
    python -m vclip.finetune --task coin --config paper --help              # every setting, that recipe's defaults

The command line is :class:`FinetuneCommand`, built by tyro from :class:`FinetuneConfig` (help from
the fields' comments) the way :mod:`vclip.config` builds ``vclip.pretrain``'s: defaults, then the
recipe ``--config`` and ``--task`` name, then the command line; a bad value is a one-line
:class:`vclip.config.ConfigError`.

=============  =====================================  ======  ======  ========================
task           loss (:mod:`vclip.tasks.heads`)         batch   epochs  data (per epoch)
=============  =====================================  ======  ======  ========================
``youcook2``   text-to-video InfoNCE                   128     10      training clips
``msrvtt``     text-to-video InfoNCE                   224     10      videos x 20 (``dup``), one
                                                                       random caption each
``msrvtt_qa``  video-to-text InfoNCE                   128     5       as msrvtt
``coin``       cross-entropy of a new Linear head      1 video 8       windows of 32 s every 8 s
``crosstask``  binary cross-entropy, seconds x steps   1 video 5       windows of 32 s every 16 s
=============  =====================================  ======  ======  ========================

``--config paper`` is that table; the default ``--config teaching`` keeps the data and losses but
sizes the run for a laptop CPU (see :data:`TEACHING`). ``--init`` takes a vclip run directory (its
``checkpoints/BEST`` when pre-training chose one, else ``LATEST``), a vclip checkpoint folder, or
the reference's ``checkpoint_best.pt``.

Model selection (``--select``): ``val`` (default) keeps the epoch with the lowest loss on the
validation split (:mod:`vclip.tasks.training`: held-out training videos; CrossTask's
``videos_val.csv``); ``test`` is the reference's rule (every epoch's checkpoint is scored on the
test set and the best reported: selection on the test set, optimistic, and every report of such a
run says so); ``last`` keeps the final epoch.

Run directory (``vclip.evaluate --checkpoint RUN`` loads it and reports fine-tuned beside zero-shot),
written through :class:`vclip.rundir.RunDir`, so the guarantees of ``docs/reliability.md`` hold as for
pre-training (one owner holds ``.lock`` before anything is written; a checkpoint is written to a
temporary folder, fsynced and renamed before ``LATEST``/``BEST`` name it; files are read as JSON,
text or safetensors only)::

    <run>/config.json          the FinetuneConfig
    <run>/finetune.json        task, init, selection, every epoch's losses, test metrics fine-tuned
                               and zero-shot (the init model, same test split)
    <run>/metrics.jsonl        train/val records
    <run>/.lock                held while the run trains
    <run>/checkpoints/epoch_XXX/{model.safetensors, config.json[, head.safetensors, head.json]}
    <run>/checkpoints/LATEST, BEST   both name the selected checkpoint (the only one kept)
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
from typing import Annotated, Literal

import numpy as np
import torch
import tyro
from torch import nn
from tqdm.auto import tqdm

from vclip import distributed as vdist
from vclip.cli import program
from vclip.config import _check_device, checks_deferred, deferred_checks, early_options, parse_typed_command
from vclip.errors import CheckpointError, ConfigError
from vclip.localization import sliding_windows
from vclip.logs import setup_logging, verbose_requested
from vclip.rundir import CHECKPOINTS_DIR, STEP_NAME, RunDir, atomic_write_text, read_json_file
from vclip.tasks.common import EvalConfig, pad_clip
from vclip.tasks.heads import (
    IGNORE_INDEX,
    SegmentationHead,
    evaluate_coin_head,
    localisation_loss,
    localisation_scores,
    segmentation_loss,
    text_to_video_loss,
    video_to_text_loss,
)
from vclip.tokenizer import MAX_VIDEO_LEN, build_text_batch, load_tokenizer

log = logging.getLogger(__name__)

FINETUNE_TASKS = ("youcook2", "msrvtt", "msrvtt_qa", "coin", "crosstask")
SELECTIONS = ("val", "test", "last")
SUMMARY_NAME = "finetune.json"
LOSS_NAMES = {"youcook2": "text_to_video", "msrvtt": "text_to_video", "msrvtt_qa": "video_to_text",
              "coin": "segmentation_cross_entropy", "crosstask": "localisation_bce"}

# The reference's recipes (projects/retri/videoclip/*_videoclip.yaml): the batch is clips/videos per
# GPU (the reference trains on 2 GPUs); COIN and CrossTask take one whole video per update.
PAPER: dict[str, dict] = {
    "youcook2": dict(batch_size=128, epochs=10),
    "msrvtt": dict(batch_size=224, epochs=10, dup=20),
    "msrvtt_qa": dict(batch_size=128, epochs=5, dup=20),
    "coin": dict(batch_size=1, epochs=8, train_stride=8),
    "crosstask": dict(batch_size=1, epochs=5, train_stride=16),
}
# Laptop-CPU sizes: the same data, losses and epochs; smaller contrastive batches (the synthetic training
# splits hold hundreds of clips, not thousands) and fewer MSR-VTT repeats; a larger lr, because the
# teaching model is a small randomly initialised network pre-trained at lr 1e-3 (the reference's 5e-5
# is for BERT-initialised towers), with a warm-up of 10 updates and a linear decay to 0 at the end of
# the run (the reference's decay toward 1,000,000 updates leaves its lr flat at 5e-5).
TEACHING: dict[str, dict] = {
    "youcook2": dict(batch_size=64, epochs=10, lr=2e-4, warmup_updates=10, total_num_update=None),
    "msrvtt": dict(batch_size=64, epochs=10, dup=2, lr=2e-4, warmup_updates=10, total_num_update=None),
    "msrvtt_qa": dict(batch_size=64, epochs=5, dup=2, lr=2e-4, warmup_updates=10, total_num_update=None),
    "coin": dict(batch_size=1, epochs=8, train_stride=8, lr=2e-4, warmup_updates=10, total_num_update=None),
    "crosstask": dict(batch_size=1, epochs=5, train_stride=16, lr=2e-4, warmup_updates=10, total_num_update=None),
}
CONFIGS = {"paper": PAPER, "teaching": TEACHING}


TaskName = Literal["youcook2", "msrvtt", "msrvtt_qa", "coin", "crosstask"]


@dataclass
class FinetuneConfig:
    """Every setting of a fine-tuning run. Field defaults are the reference's shared settings; the
    per-task ones come from the named recipe (:func:`recipe`; on the command line, ``--config`` and
    ``--task`` choose it and the defaults ``--help`` shows are that recipe's)."""

    task: TaskName  # the downstream task (its loss and head: vclip.tasks.heads)
    init: str = ""  # the pre-trained model: a vclip run directory (its checkpoints/BEST), a checkpoint folder, the reference's checkpoint_best.pt, or a Hugging Face Hub name org/name
    data: str = ""  # the task folder (as for vclip.evaluate --task T --data, with the training split), or a world root holding <task>/
    output: str = ""  # the new run directory (vclip.evaluate --checkpoint takes it)
    config: Literal["teaching", "paper"] = "teaching"  # the recipe: teaching (CPU minutes) or paper (the reference's projects/retri/videoclip/*_videoclip.yaml)
    seed: int = 0  # head initialisation, validation videos, batch order, captions drawn, dropout
    epochs: int = 10  # passes over the training split (validation and selection after each)
    batch_size: int = 128  # clips per update (youcook2, msrvtt, msrvtt_qa); coin and crosstask take 1 video
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
    select: Literal["val", "test", "last"] = "val"  # model selection: val (lowest validation loss), test (the reference's predict.py rule: on the TEST set, optimistic), last
    val_fraction: float = 0.1  # training videos held out for validation (not CrossTask: its videos_val.csv)
    eval_batch_size: int = 128  # clips per forward pass of the test evaluations
    log_every: int = 10  # updates between training-loss records in metrics.jsonl
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"  # as pre-training's: auto = fp16 autocast + loss scaling on GPU (the reference's --fp16), fp32 on CPU
    tensorboard: bool = False  # also write metrics.jsonl's records as TensorBoard scalars to <run>/tensorboard (pip install -e '.[tensorboard]')
    device: str | None = None  # cpu, cuda, cuda:N (None: cuda when available; torchrun gives each rank its GPU)
    progress: bool = True  # progress bar (--no-progress)

    def __post_init__(self) -> None:
        if checks_deferred():  # parse_command_line checks the resolved values once, in one line
            return
        self.betas = tuple(float(b) for b in self.betas)
        if self.task not in FINETUNE_TASKS:
            raise ConfigError(f"task must be one of {', '.join(FINETUNE_TASKS)}, got {self.task!r}")
        if self.config not in CONFIGS:
            raise ConfigError(f"config must be one of {', '.join(CONFIGS)}, got {self.config!r}")
        if self.select not in SELECTIONS:
            raise ConfigError(f"select must be one of {', '.join(SELECTIONS)}, got {self.select!r}")
        for name in ("epochs", "batch_size", "dup", "train_stride", "log_every", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.task in ("youcook2", "msrvtt", "msrvtt_qa") and self.batch_size < 2:
            raise ConfigError(f"{self.task}: a contrastive batch needs at least 2 clips, got batch_size={self.batch_size}")
        if not 1 <= self.window <= MAX_VIDEO_LEN:
            raise ConfigError(f"window must be in [1, {MAX_VIDEO_LEN}], got {self.window}")
        if not self.lr > 0 or self.clip_norm <= 0:
            raise ConfigError(f"lr and clip_norm must be > 0, got {self.lr} and {self.clip_norm}")
        if self.warmup_updates < 0 or (self.total_num_update is not None and self.total_num_update < 1):
            raise ConfigError(f"warmup_updates must be >= 0 and total_num_update >= 1, got {self.warmup_updates} "
                              f"and {self.total_num_update}")
        if self.select == "val" and self.task != "crosstask" and not 0 < self.val_fraction < 1:
            raise ConfigError(f"select='val' needs 0 < val_fraction < 1, got {self.val_fraction}")
        if self.device is not None:
            _check_device(self.device)
        if self.tensorboard:
            from vclip.tensorboard_log import require_tensorboard

            require_tensorboard("--tensorboard")


def recipe(task: str, config: str = "teaching", **overrides) -> FinetuneConfig:
    """The named recipe of ``task`` (``teaching`` or ``paper``) with ``overrides`` on top."""
    if config not in CONFIGS:
        raise ConfigError(f"config must be one of {', '.join(CONFIGS)}, got {config!r}")
    if task not in FINETUNE_TASKS:
        raise ConfigError(f"task must be one of {', '.join(FINETUNE_TASKS)}, got {task!r}")
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(FinetuneConfig)})
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r}; FinetuneConfig has "
                          f"{[f.name for f in dataclasses.fields(FinetuneConfig)]}")
    return FinetuneConfig(**{"task": task, "config": config, **CONFIGS[config][task], **overrides})


def epoch_name(epoch: int) -> str:
    """The checkpoint folder of the model after ``epoch`` epochs: ``epoch_003``."""
    return f"epoch_{int(epoch):03d}"


# ---------------------------------------------------------------------------------------- loading
def resolve_init(path: str | Path) -> Path:
    """The checkpoint an ``--init`` names: a pre-training run's ``checkpoints/BEST`` (lowest validation
    loss) when it has one, else what :func:`vclip.checkpoint.resolve_checkpoint` finds.

    A ``BEST`` that names a checkpoint without weights is a :class:`CheckpointError` (starting from
    ``LATEST`` instead would fine-tune another model than the run's best without saying so).
    """
    from vclip.checkpoint import resolve_checkpoint

    path = Path(path)
    run = RunDir(path)
    if path.is_dir() and run.best_path.is_file():
        folder = run.best()  # only the kit's checkpoint names, inside checkpoints/ (vclip.rundir)
        if not (folder / "model.safetensors").is_file():
            raise CheckpointError(
                f"{run.best_path} names {folder.name}, but {folder} has no model.safetensors; pass --init with "
                f"one checkpoint folder of {run.checkpoints} to start from another checkpoint"
            )
        return folder
    return resolve_checkpoint(path)


def load_init(path: str | Path):
    """(model in train mode, the resolved checkpoint path) for ``--init``."""
    from vclip.checkpoint import load_model
    from vclip.huggingface import is_hub_name

    if not Path(path).exists() and is_hub_name(path):  # a Hugging Face Hub name (vclip.hub)
        return load_model(path).train(), str(path)
    resolved = resolve_init(path)
    return load_model(resolved).train(), resolved


def check_init(model, init: str | Path, resolved: Path, feature_width: int | None, vocab_size: int) -> None:
    """Refuse an ``--init`` model that cannot fine-tune on this task's data (before the run directory exists).

    Its video tower must take the features' width (512: S3D's ``video_embedding``), its text tower the
    tokenizer's vocabulary, and every weight must be finite; else a :class:`CheckpointError` naming the init.
    """
    source = f"--init {init}" + ("" if Path(resolved) == Path(init) else f" ({resolved})")
    config = model.config
    if feature_width is not None and config.video_feature_dim != feature_width:
        raise CheckpointError(f"{source}: its video tower takes {config.video_feature_dim}-d features, but the "
                              f"task's features are {feature_width}-d; expected a model pre-trained on these features")
    if config.vocab_size != vocab_size:
        raise CheckpointError(f"{source}: its text tower has a vocabulary of {config.vocab_size} tokens, expected "
                              f"the tokenizer's {vocab_size} (bert-base-uncased)")
    broken = [name for name, weight in model.named_parameters() if not torch.isfinite(weight).all()]
    if broken:
        raise CheckpointError(f"{source}: {len(broken)} weight tensor(s) hold NaN or inf (e.g. {', '.join(broken[:3])}); "
                              "expected finite weights")


SUMMARY_FIELDS = {"task": str, "config": str, "init_checkpoint": str, "checkpoint": str, "selection_note": str,
                  "test": dict, "zero_shot_test": dict}
"""What ``finetune.json`` must hold, and of which type, for the evaluation to read it."""


def finetuned_run(path: str | Path) -> dict | None:
    """The ``finetune.json`` summary of a fine-tuning run directory (or of its checkpoint folder), else None.

    A fine-tuning run that did not finish (its ``config.json`` is a fine-tuning configuration or its
    checkpoints are ``epoch_XXX``, but there is no ``finetune.json``: killed, or failed) is a
    :class:`CheckpointError`, never taken for a pre-trained model; so is a ``finetune.json`` that is not
    JSON or whose fields have the wrong types.
    """
    path = Path(path)
    candidates = [path, path.parent.parent] if path.parent.name == CHECKPOINTS_DIR else [path]
    for candidate in candidates:
        summary_path = candidate / SUMMARY_NAME
        if summary_path.is_file():
            summary = read_json_file(summary_path)
            wrong = [f"{name} ({kind.__name__})" for name, kind in SUMMARY_FIELDS.items()
                     if not isinstance(summary.get(name), kind)]
            if wrong or summary["task"] not in FINETUNE_TASKS:
                raise CheckpointError(f"{summary_path}: expected a vclip fine-tuning summary; missing or mistyped "
                                      f"{', '.join(wrong) if wrong else 'task (one of ' + ', '.join(FINETUNE_TASKS) + ')'}")
            return summary
    for candidate in candidates:
        run = RunDir(candidate)
        started = run.config_path.is_file() and "task" in _json_or_empty(run.config_path)
        if started or any(name.startswith("epoch_") for name in run.checkpoint_names()):
            raise CheckpointError(
                f"{candidate} is a fine-tuning run that did not finish (no {SUMMARY_NAME}: killed or failed before "
                f"its test evaluation); its checkpoints are not a fine-tuned result; fine-tune again with another --output"
            )
    return None


def _json_or_empty(path: Path) -> dict:
    try:
        return read_json_file(path)
    except CheckpointError:
        return {}


def load_finetuned(path: str | Path):
    """(model, head or None, summary) of a fine-tuning run: the checkpoint ``finetune.json`` names, eval mode."""
    from vclip.checkpoint import load_model

    summary = finetuned_run(path)
    if summary is None:
        raise FileNotFoundError(f"{path} is not a fine-tuning run (no {SUMMARY_NAME})")
    path = Path(path)
    if (path / SUMMARY_NAME).is_file() and (path / "model.safetensors").is_file():
        # an exported model folder (``python -m vclip.hub``): the selected weights lie beside the summary
        model = load_model(path).eval()
        return model, SegmentationHead.load(path) if summary["task"] == "coin" else None, summary
    run_dir = path if (path / SUMMARY_NAME).is_file() else path.parent.parent
    folder = run_dir / summary["checkpoint"]
    if not STEP_NAME.fullmatch(folder.name) or folder.resolve().parent != (run_dir / CHECKPOINTS_DIR).resolve():
        raise CheckpointError(f"{run_dir / SUMMARY_NAME}: checkpoint: expected checkpoints/epoch_XXX of this run, "
                              f"found {summary['checkpoint']!r}")
    if not (folder / "model.safetensors").is_file():
        raise CheckpointError(f"{run_dir / SUMMARY_NAME} names {summary['checkpoint']}, but {folder} has no "
                              "model.safetensors (the fine-tuned weights); fine-tune again with another --output")
    model = load_model(folder).eval()
    head = SegmentationHead.load(folder) if summary["task"] == "coin" else None
    return model, head, summary


def evaluate_finetuned(model, head, task: str, folder, config: EvalConfig | None = None):
    """The test-split TaskResult of a fine-tuned model (COIN through its head, the others as zero-shot)."""
    from vclip.tasks import evaluate_task, resolve_task_folder

    if task == "coin":
        if head is None:
            raise CheckpointError("a fine-tuned COIN model needs its segmentation head (head.safetensors, head.json)")
        return evaluate_coin_head(model, head, resolve_task_folder("coin", folder), config)
    return evaluate_task(model, task, folder, config)


# ---------------------------------------------------------------------------------------- objectives
class FinetuneObjective(nn.Module):
    """The model, the task's head (COIN) and its loss; ``forward(batch)`` returns the scalar loss, so
    that DistributedDataParallel wraps one module whatever the task."""

    def __init__(self, task: str, model, head: SegmentationHead | None = None):
        super().__init__()
        self.task, self.model, self.head = task, model, head

    def forward(self, batch: dict) -> torch.Tensor:
        model = self.model
        if self.task in ("youcook2", "msrvtt", "msrvtt_qa"):
            video = model.encode_video(batch["vfeats"], batch["vmask"])
            text = model.encode_text(batch["input_ids"], batch["attention_mask"])
            if self.task == "msrvtt_qa":
                return video_to_text_loss(video, text)
            return text_to_video_loss(text, video)
        states = model.video_token_states(batch["vfeats"], batch["vmask"], attend_cls=False)  # (N, 32, H)
        if self.task == "coin":
            return segmentation_loss(self.head(states), batch["targets"])
        steps = model.encode_text(batch["input_ids"], batch["attention_mask"])  # (K, H)
        return localisation_loss(localisation_scores(states, steps), batch["targets"], batch["vmask"])


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


class Batches:
    """Turns a training or validation split into the batches of one epoch (this rank's share)."""

    def __init__(self, split, config: FinetuneConfig, tokens: dict[str, list[int]]):
        self.split, self.cfg, self.tokens = split, config, tokens

    def _texts(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return build_text_batch([self.tokens[t] for t in texts])

    def epoch(self, epoch: int, rank: int = 0, world: int = 1, train: bool = True) -> list[dict]:
        cfg, split = self.cfg, self.split
        if cfg.task in ("youcook2", "msrvtt", "msrvtt_qa"):
            repeats = cfg.dup if train else 1
            order = np.tile(np.arange(len(split)), repeats)
            rng = _rng(cfg.seed, 1, epoch)
            if train:
                order = order[rng.permutation(len(order))]
            size = min(cfg.batch_size, len(order))
            starts = range(0, len(order), size)
            batches = []
            for b, start in enumerate(starts):
                if b % world != rank:
                    continue
                items = order[start:start + size]
                if len(items) < 2:
                    continue  # one pair has no negative
                captions = [split.captions[i][int(rng.integers(len(split.captions[i]))) if train else 0] for i in items]
                padded = [pad_clip(split.clips[split.keys[i]]) for i in items]
                input_ids, attention_mask = self._texts(captions)
                batches.append({"vfeats": torch.from_numpy(np.stack([p[0] for p in padded])),
                                "vmask": torch.from_numpy(np.stack([p[1] for p in padded])),
                                "input_ids": input_ids, "attention_mask": attention_mask})
            return batches
        order = np.arange(len(split))
        if train:
            order = _rng(cfg.seed, 2, epoch).permutation(len(split))
        stride = cfg.train_stride if train else 16
        return [self._video(split.video_ids[i], stride) for n, i in enumerate(order) if n % world == rank]

    def _video(self, video_id: str, stride: int) -> dict:
        features, targets = self.split.features[video_id], self.split.targets[video_id]
        windows = sliding_windows(len(features), self.cfg.window, stride)
        padded = [pad_clip(features[s:e]) for s, e in windows]
        batch = {"vfeats": torch.from_numpy(np.stack([p[0] for p in padded])),
                 "vmask": torch.from_numpy(np.stack([p[1] for p in padded]))}
        if self.cfg.task == "coin":
            rows = np.full((len(windows), MAX_VIDEO_LEN), IGNORE_INDEX, dtype=np.int64)
            for w, (s, e) in enumerate(windows):
                rows[w, : e - s] = targets[s:e]
            batch["targets"] = torch.from_numpy(rows)
        else:
            rows = np.zeros((len(windows), MAX_VIDEO_LEN, targets.shape[1]), dtype=np.float32)
            for w, (s, e) in enumerate(windows):
                rows[w, : e - s] = targets[s:e]
            batch["targets"] = torch.from_numpy(rows)
            batch["input_ids"], batch["attention_mask"] = self._texts(self.split.texts[video_id])
        return batch


def _feature_width(split) -> int | None:
    """The width of a training split's video features (512 for S3D), or None when it holds none."""
    arrays = getattr(split, "clips", None) or getattr(split, "features", None) or {}
    return next((int(array.shape[-1]) for array in arrays.values()), None)


def _tokenize_all(splits) -> dict[str, list[int]]:
    texts = sorted({t for split in splits if split is not None
                    for t in ([c for cs in split.captions for c in cs] if hasattr(split, "captions")
                              else [t for ts in split.texts.values() for t in ts])})
    if not texts:
        return {}
    ids = load_tokenizer()(texts, add_special_tokens=False)["input_ids"]
    return dict(zip(texts, ids))


# ---------------------------------------------------------------------------------------- the run
@dataclass
class FinetuneResult:
    run_dir: Path
    summary: dict = field(default_factory=dict)


class FineTuner:
    """One (per-rank) fine-tuning process: model, head, optimiser, data, selection and run directory."""

    def __init__(self, config: FinetuneConfig, dist: vdist.DistInfo | None = None):
        from vclip.tasks import resolve_task_folder
        from vclip.tasks.training import load_split
        from vclip.training.update import Precision, polynomial_decay

        self.cfg = cfg = config
        if not cfg.output:
            raise ConfigError("output (the run directory, --output) is required")
        if not cfg.init:
            raise ConfigError("init (a pre-trained run, checkpoint folder or checkpoint_best.pt, --init) is required")
        default_device = "cuda" if torch.cuda.is_available() else "cpu"
        self.dist = dist or vdist.DistInfo(device=torch.device(cfg.device or default_device))
        self.device = self.dist.device
        self.rundir = RunDir(cfg.output)
        self.run_dir = self.rundir.path
        self._lock = None  # the run directory's lock, held by the main process while it trains
        self.folder = resolve_task_folder(cfg.task, cfg.data)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"--data {cfg.data}: no such folder")
        split_args = dict(val_fraction=cfg.val_fraction, seed=cfg.seed)
        self.train_split = load_split(cfg.task, self.folder, "train", **split_args)
        self.val_split = load_split(cfg.task, self.folder, "val", **split_args) if cfg.select == "val" else None
        for split in (self.train_split, self.val_split):
            if split is not None and len(split) == 0:
                raise ConfigError(f"{self.folder}: the {cfg.task} {split.split} split is empty "
                                 f"({split.n_items} listed, {len(split.missing)} without features)")
            if split is not None and split.missing:
                log.warning("%s %s split: %d items without features skipped (e.g. %s)", cfg.task, split.split,
                            len(split.missing), split.missing[:3])
        tokens = _tokenize_all([self.train_split, self.val_split])
        self.train_batches = Batches(self.train_split, cfg, tokens)
        self.val_batches = Batches(self.val_split, cfg, tokens) if self.val_split is not None else None

        torch.manual_seed(cfg.seed)  # the same head on every rank
        self.model, self.init_path = load_init(cfg.init)
        check_init(self.model, cfg.init, self.init_path, _feature_width(self.train_split), len(load_tokenizer()))
        self.model.to(self.device).train()
        from vclip.tasks import TASKS

        self.head = None
        if TASKS[cfg.task].finetune_head is not None:  # COIN's SegmentationHead (vclip.tasks.heads)
            self.head = TASKS[cfg.task].finetune_head(self.model.config.hidden_size, self.train_split.num_labels,
                                         self.model.config.initializer_range).to(self.device)
        self.objective = FinetuneObjective(cfg.task, self.model, self.head)
        self.net = self.objective
        if self.dist.is_distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.objective, device_ids=ids, find_unused_parameters=True)
        self.optimizer = torch.optim.Adam(self.objective.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.adam_eps,
                                          weight_decay=cfg.weight_decay)
        self.precision = Precision(cfg.precision, self.device)  # pre-training's autocast and fp16 loss scaling
        # Every rank gathers the batch counts before any check, so that all of them raise together (a rank
        # that raised alone would leave the others waiting in the gather); then every rank makes the same
        # number of updates (the fewest any rank has), one DDP all-reduce each.
        counts = vdist.all_gather_objects(len(self.train_batches.epoch(0, self.dist.rank, self.dist.world_size)))
        if min(counts) < 1:
            raise ConfigError(f"{cfg.task}: the training split gives no batch on rank {counts.index(min(counts))} "
                             f"({len(self.train_split)} items for {self.dist.world_size} ranks)")
        self.steps_per_epoch = min(counts)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        total = cfg.total_num_update or self.total_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: polynomial_decay(s, cfg.warmup_updates, total, 1.0))
        self.step = 0
        self.history: list[dict] = []

    # ---------------------------------------------------------------- pieces
    def _to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device) for k, v in batch.items()}

    def train_step(self, batch: dict) -> dict:
        torch.manual_seed(int(np.random.SeedSequence([self.cfg.seed, 3, self.step, self.dist.rank])
                              .generate_state(1, np.uint64)[0] >> 1))  # dropout
        with self.precision.autocast():
            loss = self.net(self._to_device(batch))
        self.optimizer.zero_grad(set_to_none=True)
        self.precision.backward(loss)
        grad_norm = self.precision.clip_and_step(self.optimizer, self.objective.parameters(), self.cfg.clip_norm)
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        self.step += 1
        return {"loss": float(loss.detach()), "grad_norm": float(grad_norm), "lr": lr}

    @torch.no_grad()
    def validate(self) -> float:
        """Mean loss over the validation split's batches (fixed: no shuffle, each clip's first caption)."""
        self.objective.eval()
        total, count = 0.0, 0
        try:
            for batch in self.val_batches.epoch(0, self.dist.rank, self.dist.world_size, train=False):
                with self.precision.autocast():
                    total += float(self.objective(self._to_device(batch)))
                count += 1
        finally:
            self.objective.train()
        sums = vdist.all_gather_objects((total, count))
        total, count = sum(s for s, _ in sums), sum(c for _, c in sums)
        return total / count if count else math.nan

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

    def _log(self, record: dict) -> None:
        self.history.append(record)
        if self.dist.is_main:
            self.rundir.append_metrics(record)

    def _save(self, epoch: int) -> None:
        """The selected epoch's checkpoint, atomically (vclip.rundir); then the previous one is removed."""
        if not self.dist.is_main:
            return
        name = epoch_name(epoch)

        def write(folder: Path) -> None:
            from vclip.huggingface import model_card_fields

            card = model_card_fields(title=f"VideoCLIP fine-tuned on {self.cfg.task} (vclip)", config=self.model.config,
                                     description=f"Epoch {epoch} of a fine-tuning run; its test table is written "
                                                 "here when the run finishes.")
            self.model.save_pretrained(folder, model_card_kwargs=card)
            if self.head is not None:
                self.head.save(folder)

        self.rundir.save_named(name, write, best=name, what=f"the checkpoint of epoch {epoch}")
        self.rundir.prune(0, keep={name})  # one checkpoint is kept: the selected one

    def _prepare_run_dir(self) -> None:
        """Own the run directory (lock first), refuse one that holds a run, then start it."""
        if self.dist.is_main:
            self._lock = self.rundir.lock()  # before anything is written
            if self.rundir.holds_run() or (self.run_dir / SUMMARY_NAME).exists() or self.rundir.checkpoint_names():
                raise FileExistsError(f"{self.run_dir} already holds a run; choose another --output")
            self.rundir.write_config(json.loads(json.dumps(dataclasses.asdict(self.cfg))))
            self.rundir.rewrite_metrics([])
            if self.cfg.tensorboard:
                self.rundir.open_tensorboard()  # metrics records, also as TensorBoard scalars (vclip.tensorboard_log)
        vdist.barrier()

    def _selection_score(self, epoch_record: dict) -> float:
        """Lower is better: the validation loss, minus the test headline metric, or minus the epoch."""
        from vclip.tasks import TASKS

        if self.cfg.select == "val":
            return epoch_record["val_loss"]
        if self.cfg.select == "test":
            return -epoch_record["test"]["metrics"][TASKS[self.cfg.task].metrics[0]]
        return -epoch_record["epoch"]

    # ---------------------------------------------------------------- the loop
    def fit(self) -> FinetuneResult:
        try:
            self._prepare_run_dir()
            return self._train()
        finally:
            self.rundir.close_sinks()
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def _train(self) -> FinetuneResult:
        cfg = self.cfg
        started = time.perf_counter()
        zero_shot = self.test_metrics(zero_shot=True)
        bar = tqdm(total=self.total_steps, desc=f"finetune {cfg.task}", disable=not (cfg.progress and self.dist.is_main))
        best, epochs = math.inf, []
        for epoch in range(cfg.epochs):
            batches = self.train_batches.epoch(epoch, self.dist.rank, self.dist.world_size)[: self.steps_per_epoch]
            losses = []
            for batch in batches:
                record = self.train_step(batch)
                losses.append(record["loss"])
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss']:.3f}", epoch=epoch)
                if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                    self._log({"kind": "train", "step": self.step, "epoch": epoch,
                               "loss": vdist.all_reduce_mean(record["loss"], self.device), "lr": record["lr"],
                               "grad_norm": record["grad_norm"]})
            summary = {"epoch": epoch + 1, "step": self.step,
                       "train_loss": vdist.all_reduce_mean(float(np.mean(losses)), self.device)}
            if cfg.select == "val":
                summary["val_loss"] = self.validate()
            if cfg.select == "test":
                summary["test"] = self.test_metrics()
            self._log({"kind": "epoch", **summary})
            score = self._selection_score(summary)
            if score < best:
                best = score
                self._save(epoch + 1)
                summary["selected"] = True
            epochs.append(summary)
        bar.close()
        vdist.barrier()
        chosen = max(e["epoch"] for e in epochs if e.get("selected"))
        folder = self.rundir.checkpoints / epoch_name(chosen)
        # Every rank calls test_metrics: it is a collective (rank 0 evaluates, then broadcasts the result).
        # Only rank 0 loads the selected checkpoint; the other ranks pass None and receive rank 0's numbers.
        model = head = None
        if self.dist.is_main:
            from vclip.checkpoint import load_model

            model = load_model(folder).to(self.device).eval()
            head = SegmentationHead.load(folder).to(self.device) if cfg.task == "coin" else None
        final = self.test_metrics(model, head)
        summary = {
            "task": cfg.task, "config": cfg.config, "init": str(cfg.init), "init_checkpoint": self.init_path if isinstance(self.init_path, str) else str(Path(self.init_path).resolve()),
            "loss": LOSS_NAMES[cfg.task], "select": cfg.select, "selection_note": SELECTION_NOTES[cfg.select],
            "selected_epoch": chosen, "checkpoint": str(folder.relative_to(self.run_dir)),
            "train_items": len(self.train_split), "val_items": len(self.val_split) if self.val_split else 0,
            "train_notes": self.train_split.notes, "updates": self.step, "world_size": self.dist.world_size,
            "epochs": epochs, "test": final, "zero_shot_test": zero_shot,
            "seconds": time.perf_counter() - started,
        }
        if self.dist.is_main:
            from vclip.huggingface import write_model_card
            from vclip.training.export import run_card_fields

            atomic_write_text(self.run_dir / SUMMARY_NAME, json.dumps(summary, indent=1) + "\n")
            write_model_card(folder, self.model, run_card_fields(self.run_dir, self.model.config))  # the test table
        vdist.barrier()
        return FinetuneResult(self.run_dir, summary)


SELECTION_NOTES = {
    "val": "selected by the lowest loss on the validation split (held-out training videos; CrossTask: videos_val.csv)",
    "test": "selected on the TEST set (the reference's predict.py rule): the reported test numbers are optimistic",
    "last": "the last epoch (no selection)",
}


def finetune(config: FinetuneConfig) -> FinetuneResult:
    """Run one fine-tuning run; under torchrun each process calls this."""
    info = vdist.init_distributed(config.device)
    return FineTuner(config, info).fit()


# ---------------------------------------------------------------------------------------- CLI
def summary_rows(summary: dict) -> list[list[str]]:
    """The rows of :func:`format_summary` (a header, then one per metric), as text cells."""
    from vclip.tasks import TASKS

    task = summary["task"]

    def paper(metric: str, setting: str) -> str:
        number = TASKS[task].paper_number(metric, setting)
        return number.format() if number else "-"

    rows = [["metric", "fine-tuned", "zero-shot (init)", "paper zero-shot", "paper fine-tuned"]]
    for metric in TASKS[task].metrics:
        tuned = summary["test"]["metrics"].get(metric)
        zero = summary["zero_shot_test"]["metrics"].get(metric)
        rows.append([metric, "-" if tuned is None else f"{tuned:.1f}", "-" if zero is None else f"{zero:.1f}",
                     paper(metric, "zero-shot"), paper(metric, "fine-tuned")])
    return rows


def format_summary(summary: dict) -> str:
    """Fine-tuned beside zero-shot (the init model, same test split) and the paper's numbers."""
    rows = summary_rows(summary)
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_benchmark(payload: dict) -> str:
    """The before/after table of ``benchmarks/results/finetune.json``: zero-shot, and fine-tuned mean +- std
    (min..max) over the seeds."""
    lines = [f"{'task':<10} {'metric':<16} {'zero-shot':>9}  {'fine-tuned (mean +- std, min..max)':<36}"]
    for task, result in payload["results"].items():
        for i, (metric, entry) in enumerate(result["metrics"].items()):
            tuned = entry["fine_tuned"]
            lines.append(f"{task if i == 0 else '':<10} {metric:<16} {entry['zero_shot']:>9.1f}  "
                         f"{tuned['mean']:5.1f} +- {tuned['std']:4.1f} ({tuned['min']:.1f}..{tuned['max']:.1f})")
        if task == "coin":
            lines.append(f"{'':<10} {'background share':<16} {result['background_share']:>9.1f}  (predicting "
                         f"background everywhere scores this frame_acc)")
    lines.append(f"seeds {payload['seeds']}; regenerate with: {payload['command']}")
    return "\n".join(lines)


@dataclass
class FinetuneCommand:
    """Fine-tune a pre-trained VideoCLIP on one downstream task, as the reference's recipes (torchrun for several GPUs).

    Values come from the defaults, then the recipe that --config and --task name (teaching or paper),
    then the command line; the defaults shown here are that recipe's (try --task coin --config paper --help).
    """

    print_config: bool = False  # print the resolved configuration as JSON and exit
    verbose: bool = False  # also show the libraries' log lines (faiss, transformers, ...)
    settings: Annotated[FinetuneConfig, tyro.conf.arg(name="")] = field(
        default_factory=lambda: recipe("youcook2"))


def parse_command_line(argv: list[str] | None = None, prog: str = "python -m vclip.finetune") -> FinetuneCommand:
    """Resolve defaults < the recipe of ``--config``/``--task`` < command line (vclip.config's way)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = early_options(argv, config="teaching", task="")
    if chosen["config"] not in CONFIGS:  # tyro would list the choices in a box; say it in one line
        raise ConfigError(f"--config must be one of {', '.join(CONFIGS)}, got {chosen['config']!r}")
    if chosen["task"] and chosen["task"] not in FINETUNE_TASKS:
        raise ConfigError(f"--task must be one of {', '.join(FINETUNE_TASKS)}, got {chosen['task']!r}")
    with deferred_checks():  # tyro would box a value error; the resolved values are checked below
        base = recipe(chosen["task"] or "youcook2", chosen["config"])
        base.task = tyro.MISSING  # --task is required: the recipe and the loss follow from it
    command = parse_typed_command(FinetuneCommand, argv, prog, default=FinetuneCommand(settings=base))
    command.settings = FinetuneConfig(**dataclasses.asdict(command.settings))  # the checks, in one line
    return command


def config_from_args(argv=None) -> FinetuneConfig:
    """The :class:`FinetuneConfig` a command line asks for (``vclip.finetune``'s parsing, without running)."""
    return parse_command_line(argv).settings


@program
def main(argv=None) -> int:
    """``python -m vclip.finetune``: exit 0 when fine-tuned, 2 on a user's mistake (one line, :mod:`vclip.cli`)."""
    setup_logging(verbose_requested(sys.argv[1:] if argv is None else argv))
    try:
        command = parse_command_line(argv)
        config = command.settings
        if command.print_config:
            print(json.dumps(dataclasses.asdict(config), indent=2))
            return 0
        missing = [f"--{name}" for name in ("init", "data", "output") if not getattr(config, name)]
        if missing:
            raise ConfigError(f"{', '.join(missing)} required (the pre-trained model, the task folder, the new run directory)")
        result = finetune(config)
    finally:
        vdist.cleanup()
    summary = result.summary
    if os.environ.get("RANK", "0") == "0" and summary:
        print(f"run: {result.run_dir}  task: {summary['task']}  recipe: {summary['config']}  "
              f"updates: {summary['updates']}  selected epoch: {summary['selected_epoch']} ({summary['selection_note']})")
        print(format_summary(summary))
        print("paper: VideoCLIP's numbers on the real datasets (a different dataset from a synthetic world)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
