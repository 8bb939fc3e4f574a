"""The latent ground truth saved beside every synthetic folder (``synthetic_truth.json``).

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 reports each zero-shot metric against chance; on the
synthetic world the latent truth also gives the *oracle*: the score of a model that knows exactly
which step every second shows and every sentence describes. Reference: none (the reference has no
synthetic data); the format is documented in ``data/README.md``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vclip.errors import DataFormatError

TRUTH_FILE = "synthetic_truth.json"
TRUTH_FORMAT = "vclip-synthetic-truth/1"


@dataclass
class SyntheticTruth:
    """What a synthetic folder really contains. Latent steps index ``steps``; -1 is background/chatter.

    Attributes:
        folder: "pretrain", "youcook2", "msrvtt", "msrvtt_qa", "crosstask", "coin" or "didemo".
        steps: the name of every latent step ("chop the onion"), the same list in every folder.
        tasks: {task title: [latent step, ...]} in order, the same in every folder.
        video_steps: {video id: per-second latent step (length = feature rows)}.
        video_tasks: {video id: task title}.
        text_steps: one latent step per row of the annotation file, in file order (youcook2, msrvtt,
            msrvtt_qa's correct answer, didemo); empty for the other folders.
        text_tasks: youcook2 only: the task each annotation row names (its video's task), in file order;
            the oracle then needs both the step and the task to match.
        caption_steps: pretrain only: {video id: latent step of each raw_caption.json line}.
        candidate_steps: msrvtt_qa only: the latent step of the 5 candidates of each row.
        task_steps: crosstask only: {task id: latent step of each step of tasks_*.txt}.
        label_steps: coin only: latent step of label id i + 1 (label 0, background, is -1).
        moments: didemo only: the true [start, end] 5-second chunk pair of each record.
    """

    folder: str
    steps: list[str]
    tasks: dict[str, list[int]]
    video_steps: dict[str, list[int]] = field(default_factory=dict)
    video_tasks: dict[str, str] = field(default_factory=dict)
    text_steps: list[int] = field(default_factory=list)
    text_tasks: list[str] = field(default_factory=list)
    caption_steps: dict[str, list[int]] = field(default_factory=dict)
    candidate_steps: list[list[int]] = field(default_factory=list)
    task_steps: dict[str, list[int]] = field(default_factory=dict)
    label_steps: list[int] = field(default_factory=list)
    moments: list[list[int]] = field(default_factory=list)

    def seconds(self, video_id: str) -> np.ndarray:
        """(T,) int64: the latent step of every second of ``video_id`` (-1 background)."""
        return np.asarray(self.video_steps[video_id], dtype=np.int64)

    def clip_step(self, video_id: str, start: int, end: int) -> int:
        """The majority latent step of seconds [start, end) (background only if nothing else is shown)."""
        labels = self.seconds(video_id)[int(start):max(int(end), int(start) + 1)]
        shown = labels[labels >= 0]
        if len(shown) == 0:
            return -1
        values, counts = np.unique(shown, return_counts=True)
        return int(values[np.argmax(counts)])

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / TRUTH_FILE
        with open(path, "w") as handle:
            json.dump({"format": TRUTH_FORMAT, **asdict(self)}, handle, separators=(",", ":"))
        return path


def load_truth(folder: str | Path) -> SyntheticTruth:
    """Read ``<folder>/synthetic_truth.json`` (a folder of a synthetic world), checking its format."""
    path = Path(folder) / TRUTH_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no latent truth here; only folders written by "
                                f"`python -m vclip.synthetic` have one")
    with open(path) as handle:
        data = json.load(handle)
    found = data.pop("format", None) if isinstance(data, dict) else None
    if found != TRUTH_FORMAT:
        raise DataFormatError(path, "format", repr(TRUTH_FORMAT), repr(found))
    return SyntheticTruth(**data)
