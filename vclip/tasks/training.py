"""What fine-tuning needs from a task: its training split, its batches, its head and loss, its evaluation.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (fine-tuned results beside the zero-shot ones).
Reference: fairseq ``examples/MMPT``, ``projects/retri/videoclip/{youcook,vtt,vttqa,coin,crosstask}_
videoclip.yaml``, the meta processors of ``mmpt/processors/dsprocessor.py`` and fairseq's batch
iterator (``fairseq/data/iterators.py``, ``data_utils.batch_by_size``).

A task that can be fine-tuned sets ``finetuning`` on its registered class to a :class:`TaskFinetuning`
(:mod:`vclip.tasks.registry`); the fine-tuning library (:mod:`vclip.training.finetuning`) reads every
task-specific fact through it and never by a task's name, so adding a task stays one module and one
registration. The two kinds here cover the five reference recipes:

==========================  ===================================================================
:class:`PairFinetuning`     clip/caption pairs, a contrastive loss over the batch (YouCook2,
                            MSR-VTT, MSR-VTT QA); the task gives its split reader and the loss
:class:`WindowFinetuning`   one whole video per update, cut into windows of 32 seconds, a
                            per-second loss (COIN's new head, CrossTask's step scores)
==========================  ===================================================================

Batches are streamed: :meth:`TaskFinetuning.batches` plans an epoch as small index arrays (which
items form each batch, which caption each draws) and :class:`EpochBatches` builds a batch's tensors
only when it is asked for, so memory does not grow with the epoch's length (MSR-VTT's ``dup``).

Batch order (``batches``): ``fixed`` is the reference's -- its fine-tuning datasets keep their list
order, so fairseq's batches are consecutive slices of the (``dup``-tiled) list and only the order of
the batches is shuffled each epoch; ``random`` shuffles the items before slicing them. Both count
the pairs of one batch that come from the same video (false negatives of a contrastive loss).

The validation split is a seeded fraction of the training *videos* (never a video's clips split
across the two; :func:`validation_videos`); the reference has none (its "valid" subset is the test
file). Training videos that also appear in the task's evaluation split are left out and counted,
as are items whose features are absent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vclip.errors import DataFormatError
from vclip.localization import sliding_windows
from vclip.tasks.common import IGNORE_INDEX, pad_clip  # noqa: F401 (IGNORE_INDEX: the task modules' name for it)
from vclip.tokenizer import MAX_VIDEO_LEN, build_text_batch

SPLITS = ("train", "val", "test")
BATCH_ORDERS = ("fixed", "random")

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# Splits


def validation_videos(video_ids, fraction: float, seed: int = 0) -> set[str]:
    """The held-out videos: ``round(fraction * n)`` (at least 1 when fraction > 0 and n > 1) of the
    distinct ``video_ids``, by a seeded permutation of their sorted list (independent of file order)."""
    unique = sorted(set(video_ids))
    if not 0 <= fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {fraction}")
    count = int(round(fraction * len(unique)))
    if fraction > 0 and len(unique) > 1:
        count = max(1, count)
    order = np.random.default_rng([seed, 7919]).permutation(len(unique))
    return {unique[i] for i in order[:count]}


@dataclass
class PairSplit:
    """Clip/caption pairs of a retrieval or QA split (an epoch draws one caption per clip).

    Attributes:
        keys: (video id, first second, end second) of each clip; its rows are ``clips[key]``.
        captions: the candidate captions of each clip (YouCook2: its sentence; MSR-VTT: all of its
            video's captions).
    """

    task: str
    split: str
    keys: list[tuple[str, int, int]]
    captions: list[list[str]]
    clips: dict
    n_items: int = 0
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    source: str = ""  # one line: which list the split was read from, and how many videos it has

    def __len__(self) -> int:
        return len(self.keys)

    def texts(self) -> list[str]:
        return [c for captions in self.captions for c in captions]

    def feature_width(self) -> int | None:
        return next((int(array.shape[-1]) for array in self.clips.values()), None)


@dataclass
class VideoSplit:
    """Whole videos of a COIN or CrossTask split, with per-second targets.

    Attributes:
        video_ids: the videos (one update each: the reference's batch of 1 video).
        features: video id -> (T, 512).
        targets: video id -> COIN (T,) int64 label ids (0 = background); CrossTask (T, K) uint8.
        texts: CrossTask only: video id -> its task's K step texts.
        num_labels: COIN only: the number of step labels (the head has num_labels + 1 outputs).
    """

    task: str
    split: str
    video_ids: list[str]
    features: dict
    targets: dict
    texts: dict = field(default_factory=dict)
    num_labels: int = 0
    n_items: int = 0
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    source: str = ""  # one line: which list the split was read from, and how many videos it has

    def __len__(self) -> int:
        return len(self.video_ids)

    def all_texts(self) -> list[str]:
        return [t for texts in self.texts.values() for t in texts]

    def feature_width(self) -> int | None:
        return next((int(array.shape[-1]) for array in self.features.values()), None)


def report_lost_segments(data, path: Path, lost: list[str], labelled: int, noun: str) -> None:
    """Count the labelled segments of a split that start at or after the end of their video's features.

    Slicing past the end gives them no second (in the reference too, without a word): they are left
    out, noted and logged with the file and the count, and a split that loses every labelled segment is an error (its
    head would learn from background alone). ``lost`` names each lost segment; ``labelled`` counts the
    split's segments, lost or not.
    """
    if not lost:
        return
    note = (f"{len(lost)} of {labelled} {noun} in {path} start at or after the end of their video's features "
            f"and are left out (features shorter than the annotations?), e.g. {lost[:3]}")
    if len(lost) == labelled:
        raise DataFormatError(path, f"{noun} of the {data.split} split", "segments that start inside their video's "
                              "features", f"all {labelled} start at or after the end (features shorter than the "
                              "annotations, or extracted at another frame rate?)")
    data.notes.append(note)
    logger.warning("%s %s split: %s", data.task, data.split, note)


def overlap_note(left_out: list[str], what: str) -> list[str]:
    """The note on training videos left out because the task's evaluation split holds them too."""
    if not left_out:
        return []
    return [f"{len(left_out)} training videos are also in the {what} evaluation split and were left out "
            f"(the splits must be disjoint), e.g. {left_out[:3]}"]


def load_split(task: str, folder: str | Path, split: str = "train", val_fraction: float = 0.1, seed: int = 0):
    """The ``train``, ``val`` or ``test`` split of ``task`` in its folder, read by the task's own reader
    (``TASKS[task].finetuning``): a :class:`PairSplit` or a :class:`VideoSplit`. ``val_fraction`` and
    ``seed`` choose the held-out videos (0: none is held out, the ``train`` split has every video)."""
    from vclip.tasks.registry import get_task  # (the package registered the built-in tasks before this ran)

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    hooks = get_task(task).finetuning
    if hooks is None:
        raise ValueError(f"task {task!r} has no fine-tuning recipe (its module sets no `finetuning`)")
    return hooks.read_split(Path(folder), split, val_fraction, seed)


# --------------------------------------------------------------------------------------------------
# Streamed batches


class EpochBatches(Sequence):
    """The batches of one epoch on one rank, built one at a time (``plans[i]`` -> ``build(plans[i])``).

    A sequence: ``len``, indexing (``batches[0]``) and iteration build only the batches asked for, so
    an epoch's memory is its plan (index arrays), never its tensors. ``same_video_pairs[i]`` counts
    the pairs of batch ``i`` whose clips come from the same video.
    """

    def __init__(self, plans: list, build: Callable[[Any], dict], same_video_pairs: list[int] | None = None):
        self.plans, self._build = plans, build
        self.same_video_pairs = same_video_pairs if same_video_pairs is not None else [0] * len(plans)

    def __len__(self) -> int:
        return len(self.plans)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return EpochBatches(self.plans[index], self._build, self.same_video_pairs[index])
        return self._build(self.plans[index])

    def __iter__(self) -> Iterator[dict]:
        for plan in self.plans:
            yield self._build(plan)


def same_video_pairs(video_ids: Sequence[str]) -> int:
    """Pairs (i < j) of a batch whose items come from the same video."""
    _, counts = np.unique(np.asarray(video_ids, dtype=object).astype(str), return_counts=True)
    return int((counts * (counts - 1) // 2).sum())


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


class TaskFinetuning:
    """What fine-tuning needs from one task; a task module sets an instance as ``MyTask.finetuning``.

    Attributes:
        loss_name: the loss, as ``finetune.json`` reports it.
        min_batch_size: the fewest items a batch may hold (a contrastive batch needs 2).
        test_selection: what ``--select test`` scores, the reference's rule for this task:
            ``"every_checkpoint"`` (every epoch's checkpoint on the test set, the best reported:
            ``mmpt_cli/predict.py``) or ``"lowest_test_loss"`` (one checkpoint, the epoch of lowest
            loss on the test split, which is the task's validation split in the reference:
            fairseq's ``checkpoint_best.pt``).
        val_source: one line on where the validation split comes from (``finetune.json``).
        training_files: names in a task folder that mark fine-tuning data (``vclip.data check`` counts the
            fine-tuning splits of a folder holding one of them).
    """

    loss_name: str = ""
    min_batch_size: int = 1
    test_selection: str = "every_checkpoint"
    val_source: str = "held-out training videos"
    training_files: tuple[str, ...] = ()

    def has_training_data(self, folder: Path) -> bool:
        """Whether ``folder`` holds this task's fine-tuning data (one of ``training_files``)."""
        return any((Path(folder) / name).exists() for name in self.training_files)

    def no_training_note(self, folder: Path) -> str | None:
        """A note when the training files are there but hold no training items (the check stops there)."""
        return None

    def read_split(self, folder: Path, split: str, val_fraction: float, seed: int):
        """The ``train``/``val``/``test`` split in ``folder`` (a :class:`PairSplit` or :class:`VideoSplit`)."""
        raise NotImplementedError

    def new_head(self, model, split):
        """A new ``nn.Module`` on top of the towers for this task (initialised here), or None."""
        return None

    def save_head(self, head, folder: Path) -> None:
        if head is not None:
            head.save(folder)

    def load_head(self, folder: Path):
        """The head saved beside a fine-tuned checkpoint in ``folder`` (None when the task has none)."""
        return None

    def loss(self, model, head, batch: dict):
        """The scalar loss of ``batch`` (a dict of tensors on the model's device)."""
        raise NotImplementedError

    def batches(self, split, settings, tokens: dict[str, list[int]], epoch: int, rank: int = 0, world: int = 1,
                train: bool = True) -> EpochBatches:
        """This rank's batches of ``epoch``, streamed (``settings``: the fine-tuning configuration)."""
        raise NotImplementedError

    def batch_count(self, split, settings, rank: int = 0, world: int = 1) -> int:
        """How many training batches an epoch gives this rank (without building any)."""
        return len(self.batches(split, settings, {}, 0, rank, world, plan_only=True))

    def evaluate(self, model, head, folder: Path, config):
        """The test-split :class:`vclip.tasks.common.TaskResult` of a fine-tuned model on the task's
        resolved ``folder``, or None (the default): the task's zero-shot evaluation
        (:func:`vclip.tasks.evaluate_task`) then scores the fine-tuned towers."""
        return None

    task_name: str = ""  # set by the task module (the registered name)


class PairFinetuning(TaskFinetuning):
    """Clip/caption pairs with a contrastive loss over the batch (YouCook2, MSR-VTT, MSR-VTT QA).

    ``reader(folder, split, val_fraction, seed)`` gives the :class:`PairSplit`; ``direction`` is
    ``"text_to_video"`` (reference ``T2VContraLoss``) or ``"video_to_text"`` (``V2TContraLoss``).
    """

    min_batch_size = 2

    def __init__(self, task_name: str, reader: Callable[..., PairSplit], direction: str,
                 training_files: tuple[str, ...] = ()):
        if direction not in ("text_to_video", "video_to_text"):
            raise ValueError(f"direction must be text_to_video or video_to_text, got {direction!r}")
        self.task_name, self.reader, self.direction = task_name, reader, direction
        self.training_files = training_files or type(self).training_files
        self.loss_name = type(self).loss_name or direction  # a subclass with its own loss names it

    def read_split(self, folder: Path, split: str, val_fraction: float, seed: int) -> PairSplit:
        return self.reader(folder, split, val_fraction, seed)

    def loss(self, model, head, batch: dict):
        from vclip.tasks.heads import text_to_video_loss, video_to_text_loss

        video = model.encode_video(batch["vfeats"], batch["vmask"])
        text = model.encode_text(batch["input_ids"], batch["attention_mask"])
        if self.direction == "video_to_text":
            return video_to_text_loss(video, text)
        return text_to_video_loss(text, video)

    def batches(self, split: PairSplit, settings, tokens, epoch, rank=0, world=1, train=True,
                plan_only: bool = False) -> EpochBatches:
        """Each batch: ``batch_size`` items of the ``dup``-tiled list (``dup`` in training only), each with
        one random caption (training) or its first (validation); a batch of 1 is dropped (no negative).

        ``settings.batches == "fixed"`` (the reference): consecutive slices of the list in its order, the
        slices shuffled each epoch; ``"random"``: the items shuffled, then sliced. Batch ``b`` of the
        shuffled list belongs to rank ``b % world``.
        """
        order = np.tile(np.arange(len(split)), settings.dup if train else 1)
        rng = _rng(settings.seed, 1, epoch)
        size = min(settings.batch_size, len(order))
        random_items = train and getattr(settings, "batches", "random") == "random"
        if random_items:
            order = order[rng.permutation(len(order))]
        slices = [order[start:start + size] for start in range(0, len(order), size)]
        if train and not random_items:  # fairseq's iterator: fixed batches, their order shuffled per epoch
            slices = [slices[i] for i in _rng(settings.seed, 4, epoch).permutation(len(slices))]
        plans, pairs = [], []
        for b, items in enumerate(slices):
            if b % world != rank or len(items) < 2:
                continue  # another rank's batch, or one pair without a negative
            choices = (np.array([int(rng.integers(len(split.captions[i]))) for i in items]) if train and not plan_only
                       else np.zeros(len(items), dtype=np.int64))
            plans.append((items, choices))
            pairs.append(same_video_pairs([split.keys[i][0] for i in items]))

        def build(plan) -> dict:
            import torch

            items, choices = plan
            padded = [pad_clip(split.clips[split.keys[i]]) for i in items]
            input_ids, attention_mask = build_text_batch([tokens[split.captions[i][c]] for i, c in zip(items, choices)])
            return {"vfeats": torch.from_numpy(np.stack([p[0] for p in padded])),
                    "vmask": torch.from_numpy(np.stack([p[1] for p in padded])),
                    "input_ids": input_ids, "attention_mask": attention_mask}

        return EpochBatches(plans, build, pairs)


class WindowFinetuning(TaskFinetuning):
    """One video per update, cut into windows of ``window`` seconds every ``train_stride`` (16 when
    validating); each window's per-second targets padded to 32 (COIN, CrossTask)."""

    def __init__(self, task_name: str, reader: Callable[..., VideoSplit]):
        self.task_name, self.reader = task_name, reader

    def read_split(self, folder: Path, split: str, val_fraction: float, seed: int) -> VideoSplit:
        return self.reader(folder, split, val_fraction, seed)

    def window_targets(self, split: VideoSplit, video_id: str, windows) -> dict:
        """The targets (and any texts) of one video's windows, as tensors (a subclass's)."""
        raise NotImplementedError

    def batches(self, split: VideoSplit, settings, tokens, epoch, rank=0, world=1, train=True,
                plan_only: bool = False) -> EpochBatches:
        """The videos in a seeded order per epoch in training (list order when validating); video ``n``
        of that order belongs to rank ``n % world``. ``settings.batches`` does not apply (one video each)."""
        order = _rng(settings.seed, 2, epoch).permutation(len(split)) if train else np.arange(len(split))
        stride = settings.train_stride if train else 16
        plans = [split.video_ids[i] for n, i in enumerate(order) if n % world == rank]

        def build(video_id: str) -> dict:
            import torch

            features = split.features[video_id]
            windows = sliding_windows(len(features), settings.window, stride)
            padded = [pad_clip(features[s:e]) for s, e in windows]
            batch = {"vfeats": torch.from_numpy(np.stack([p[0] for p in padded])),
                     "vmask": torch.from_numpy(np.stack([p[1] for p in padded]))}
            batch.update(self.window_targets(split, video_id, windows, tokens))
            return batch

        return EpochBatches(plans, build)

    @staticmethod
    def padded_rows(targets: np.ndarray, windows, fill, dtype) -> np.ndarray:
        """(windows, 32, ...) rows of ``targets`` per window, ``fill`` past each window's end."""
        rows = np.full((len(windows), MAX_VIDEO_LEN, *targets.shape[1:]), fill, dtype=dtype)
        for w, (s, e) in enumerate(windows):
            rows[w, : e - s] = targets[s:e]
        return rows


__all__ = ["BATCH_ORDERS", "EpochBatches", "PairFinetuning", "PairSplit", "TaskFinetuning", "VideoSplit",
           "WindowFinetuning", "load_split", "overlap_note", "report_lost_segments", "same_video_pairs",
           "validation_videos"]
