"""What every zero-shot task shares: the options, the result record, batched
encoding (each text and each video encoded once per run), sliding-window token scores, and the
baselines' helpers.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (zero-shot transfer). Reference: fairseq
``examples/MMPT``, ``mmpt_cli/predict.py`` and ``mmpt/evaluators/predictor.py`` (``RetrievalPredictor``
stacks pooled vectors in batches; ``CrossTaskPredictor``/``COINZSPredictor`` average overlapping
window scores), ``mmpt/processors/dsprocessor.py`` (``DSAligner``: only the first 32 seconds of a
video are used; ``_build_video_seq`` zero-pads to 32).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vclip.errors import DataFormatError
from vclip.localization import average_windows, sliding_windows
from vclip.progress import progress_bar
from vclip.tokenizer import MAX_VIDEO_LEN, build_text_batch, load_tokenizer

IGNORE_INDEX = -100  # CrossEntropyLoss's default ignore_index: the padded seconds of a fine-tuning window

if TYPE_CHECKING:  # torch is imported in the functions that score: `vclip.data check` runs without it
    import torch

logger = logging.getLogger(__name__)

FEATURES_DIR = "features"


@dataclass
class EvalConfig:
    """Options of the zero-shot evaluation. Defaults are the reference's; each other value is a
    deliberate, documented deviation (DEVIATIONS.md, "Evaluation")."""

    batch_size: int = 128  # clips, texts or 32-second windows per forward pass (the reference: 256 / 1 video)
    window: int = 32  # CrossTask / COIN test windows: 32 seconds ...
    stride: int = 16  # ... starting every 16 seconds (sliding_window in the test yamls)
    didemo_pooling: str = "unmasked"  # "unmasked": the reference's mean over padded rows too; "masked": valid rows only
    crosstask_n_train: int = 30  # videos per primary task kept for training; the rest is the test set
    crosstask_seed: int = 0  # np.random.seed(0) in CrossTaskMetaProcessor
    baseline_repeats: int = 10  # draws averaged by the chance and oracle baselines
    baseline_seed: int = 0  # seed of the chance and oracle draws
    progress: bool = True  # tqdm bars

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.didemo_pooling not in ("unmasked", "masked"):
            raise ValueError(f"didemo_pooling must be 'unmasked' (reference) or 'masked', got {self.didemo_pooling!r}")
        if not 1 <= self.window <= MAX_VIDEO_LEN or self.stride < 1:
            raise ValueError(f"window must be in [1, {MAX_VIDEO_LEN}] and stride >= 1, got {self.window}, {self.stride}")
        if self.baseline_repeats < 1:
            raise ValueError(f"baseline_repeats must be >= 1, got {self.baseline_repeats}")


@dataclass
class TaskResult:
    """The outcome of one task on one evaluation folder.

    Attributes:
        task: the registered task's name (:data:`vclip.tasks.TASKS`).
        scorer: "model", "chance" or "oracle".
        folder: the evaluation folder.
        metrics: the task's numbers (percent; ranks 1-based), empty when nothing could be evaluated.
        n_items: items in the annotation file (clips, questions, queries or videos).
        n_evaluated: items actually evaluated (the N to report).
        n_missing_features: items skipped because their feature file is absent.
        missing_examples: up to 10 absent feature files, by video id.
        details: further numbers (video->text retrieval, per-task recall, the COIN threshold...).
        notes: plain-language remarks (what was skipped and why, quirks that applied).
        seconds: wall time (the model's includes reading the folder, which every scorer then shares).
    """

    task: str
    scorer: str
    folder: str
    metrics: dict[str, float] = field(default_factory=dict)
    n_items: int = 0
    n_evaluated: int = 0
    n_missing_features: int = 0
    missing_examples: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @classmethod
    def start(cls, task: str, scorer: str, folder, n_items: int, n_evaluated: int, missing: list[str],
              notes: list[str] = ()) -> TaskResult:
        """An empty result that already counts what was evaluated and what was skipped."""
        return cls(task=task, scorer=scorer, folder=str(folder), n_items=n_items, n_evaluated=n_evaluated,
                   n_missing_features=len(missing), missing_examples=list(dict.fromkeys(missing))[:10],
                   notes=list(notes))

    @property
    def ok(self) -> bool:
        return self.n_evaluated > 0 and bool(self.metrics)

    def to_dict(self) -> dict:
        return asdict(self)

    def missing_report(self) -> str:
        """A sentence saying what is missing, or "" when nothing is."""
        if not self.n_missing_features:
            return ""
        examples = ", ".join(self.missing_examples[:5])
        return (
            f"{self.task}: {self.n_missing_features} of {self.n_items} items have no feature file in "
            f"{Path(self.folder) / FEATURES_DIR} (e.g. {examples}); expected features/<video_id>.npy of shape "
            f"(seconds, 512) (see data/README.md; `python -m vclip.data check {self.folder}`)"
        )


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else a DataFormatError saying which annotation file is expected."""
    if not path.is_file():
        raise DataFormatError(path, "file", what, "no such file")
    return path


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module):
    """Run ``model`` in eval mode without gradients, restoring its training flag afterwards."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _batches(n: int, size: int, progress: bool, desc: str) -> Iterator[slice]:
    starts = range(0, n, size)
    for start in progress_bar(starts, desc=desc, enabled=progress and n > size, leave=False):
        yield slice(start, min(start + size, n))


def encode_texts_once(model, texts: list[str], config: EvalConfig, desc: str = "texts") -> torch.Tensor:
    """Pooled text embeddings (N, H), float32 on the CPU; each distinct text is encoded once.

    Texts are tokenised without special tokens and laid out ``[CLS] text[:61] [SEP]`` (the reference's
    ``TextProcessor`` + ``_build_text_seq``); batches are formed from length-sorted texts (padding never
    changes a text's embedding).
    """
    import torch

    if not texts:
        raise ValueError("encode_texts_once needs at least one text")
    unique = list(dict.fromkeys(texts))
    token_lists = load_tokenizer()(unique, add_special_tokens=False)["input_ids"]
    order = sorted(range(len(unique)), key=lambda i: len(token_lists[i]))
    device = model_device(model)
    pooled: list[torch.Tensor | None] = [None] * len(unique)
    for batch in _batches(len(order), config.batch_size, config.progress, f"encode {desc}"):
        indices = order[batch]
        input_ids, attention_mask = build_text_batch([token_lists[i] for i in indices])
        out = model.encode_text(input_ids.to(device), attention_mask.to(device)).float().cpu()
        for row, index in enumerate(indices):
            pooled[index] = out[row]
    table = torch.stack(pooled)  # (U, H)
    position = {text: i for i, text in enumerate(unique)}
    return table[[position[t] for t in texts]]


def pad_clip(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first 32 rows of a clip, zero-padded to 32: ((32, F) float32, (32,) bool mask).
    An empty clip gives all zeros and an all-False mask (the reference's ``_build_video_seq``)."""
    rows = np.asarray(rows, dtype=np.float32)[:MAX_VIDEO_LEN]
    padded = np.zeros((MAX_VIDEO_LEN, rows.shape[1] if rows.ndim == 2 else 512), dtype=np.float32)
    mask = np.zeros(MAX_VIDEO_LEN, dtype=bool)
    padded[: len(rows)] = rows
    mask[: len(rows)] = True
    return padded, mask


def run_video_batches(
    clips: list[np.ndarray], config: EvalConfig, desc: str, forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    device: torch.device,
) -> list[torch.Tensor]:
    """Apply ``forward(vfeats (B, 32, F), vmask (B, 32))`` to every clip (first 32 rows, padded) in batches;
    returns one CPU float32 output per clip."""
    import torch

    outputs: list[torch.Tensor] = []
    for batch in _batches(len(clips), config.batch_size, config.progress, f"encode {desc}"):
        padded = [pad_clip(c) for c in clips[batch]]
        vfeats = torch.from_numpy(np.stack([p[0] for p in padded])).to(device)
        vmask = torch.from_numpy(np.stack([p[1] for p in padded])).to(device)
        outputs.extend(forward(vfeats, vmask).float().cpu())
    return outputs


def encode_clips_once(model, keys: list, clips: dict, config: EvalConfig, desc: str = "videos") -> torch.Tensor:
    """Pooled video embeddings (N, H) for ``keys`` (any hashable: a video id or (video, start, end));
    ``clips[key]`` is a (T, 512) array of which the first 32 rows are used. Each distinct key is
    encoded once."""
    import torch

    unique = list(dict.fromkeys(keys))
    outputs = run_video_batches([clips[k] for k in unique], config, desc, model.encode_video, model_device(model))
    table = torch.stack(outputs)
    position = {k: i for i, k in enumerate(unique)}
    return table[[position[k] for k in keys]]


def window_scores(
    model, videos: Iterable[tuple[object, np.ndarray, torch.Tensor]], config: EvalConfig, total: int | None = None,
    desc: str = "windows",
) -> Iterator[tuple[object, np.ndarray]]:
    """Per-second scores of whole videos against texts, from 32-second windows (CrossTask and COIN).

    For each ``(key, features (T, 512), text_matrix (K, H))``: the windows of :func:`sliding_windows`,
    the video tower's last-layer states at the seconds of each window with ``[CLS]`` masked out of
    attention (the reference's dummy caps ``[CLS, SEP, PAD, SEP]`` / masks ``[0, 1, 0, 1]``), dot
    products with the texts, averaged over overlapping windows. Windows of consecutive videos share
    batches; each video's (T, K) float64 scores are yielded as soon as its windows are done.
    """
    import torch

    device = model_device(model)
    pending: list[tuple[int, int, np.ndarray]] = []  # (video slot, window index, rows)
    slots: dict[int, dict] = {}
    bar = progress_bar(total=total, desc=f"score {desc}", enabled=config.progress, leave=False)

    def flush() -> Iterator[tuple[object, np.ndarray]]:
        if not pending:
            return
        padded = [pad_clip(rows) for _, _, rows in pending]
        vfeats = torch.from_numpy(np.stack([p[0] for p in padded])).to(device)
        vmask = torch.from_numpy(np.stack([p[1] for p in padded])).to(device)
        with torch.no_grad():
            states = model.video_token_states(vfeats, vmask, attend_cls=False).float().cpu()  # (B, 32, H)
        for b, (slot, index, rows) in enumerate(pending):
            entry = slots[slot]
            entry["scores"][index] = (states[b, : len(rows)] @ entry["texts"].T).double().numpy()
            entry["left"] -= 1
        pending.clear()
        for slot in sorted(slots):
            entry = slots[slot]
            if entry["left"] == 0:
                del slots[slot]
                bar.update(1)
                yield entry["key"], average_windows(entry["scores"], entry["windows"], entry["T"])

    for slot, (key, features, texts) in enumerate(videos):
        windows = sliding_windows(len(features), config.window, config.stride)
        slots[slot] = {"key": key, "T": len(features), "windows": windows, "texts": texts.float(),
                       "scores": [None] * len(windows), "left": len(windows)}
        for index, (start, end) in enumerate(windows):
            pending.append((slot, index, features[start:end]))
            if len(pending) >= config.batch_size:
                yield from flush()
    yield from flush()
    bar.close()


def mean_of_dicts(dicts: list[dict]) -> dict:
    """Key-wise mean of numeric dicts (the baselines average several random draws)."""
    keys = [k for k, v in dicts[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return {k: float(np.mean([d[k] for d in dicts])) for k in keys}


def timed(function: Callable[[], TaskResult]) -> TaskResult:
    start = time.perf_counter()
    result = function()
    result.seconds = time.perf_counter() - start
    return result
