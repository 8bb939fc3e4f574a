"""The training splits of the synthetic world: what each fine-tuning recipe reads, in the real formats.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (each downstream task fine-tuned on its training
set). Reference: fairseq ``examples/MMPT``, ``projects/retri/videoclip/{youcook,vtt,vttqa,coin,
crosstask}_videoclip.yaml`` and the meta processors of ``mmpt/processors/dsprocessor.py`` that read
the training files named below.

Each writer adds a training split to a task folder that :mod:`vclip.synthetic.generate` has already
written, beside its evaluation split, with new videos only (disjoint from it: no shared video)::

    youcook2/youcookii_annotations_trainval.json   + videos of subset "training" (the official file
                                                     holds both subsets)
    msrvtt/MSRVTT_train.9k.csv, MSRVTT_data.json   training videos video0.. and their captions
    msrvtt_qa/ (the same two files and videos)     the reference trains QA on MSR-VTT's retrieval set
    coin/COIN.json                                 + videos of subset "training"
    crosstask/                                     nothing: its training part (30 videos per primary
                                                     task, and every related task) is already there

The writers use a small surface of the world: ``World.new_video_id``, ``World.plan``,
``World.render``, a timeline's ``segments``/``task``/``per_second()``, and the sentence generators
of :mod:`vclip.synthetic.language`; they draw from their own random streams, so adding or resizing
a training split never changes an evaluation set.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vclip.data.truth import load_truth
from vclip.synthetic.language import STEPS, TASKS, annotation, description

MSRVTT_TRAIN_LIST = "MSRVTT_train.9k.csv"
MSRVTT_DATA = "MSRVTT_data.json"


@dataclass(frozen=True)
class SplitSizes:
    """How many training videos each folder gains. Seconds ranges are inclusive."""

    youcook_train_videos: int = 120  # ~7 annotated clips each (the validation split has 60 videos)
    youcook_seconds: tuple[int, int] = (60, 180)
    msrvtt_train_videos: int = 500  # whole short clips, as MSR-VTT's 9k training videos
    msrvtt_captions: int = 5  # captions per training video (the real set has 20)
    msrvtt_seconds: tuple[int, int] = (10, 30)
    coin_train_videos: int = 100  # added to the world's own few training videos
    coin_seconds: tuple[int, int] = (40, 150)


SIZES: dict[str, SplitSizes] = {
    "default": SplitSizes(),
    "large": SplitSizes(youcook_train_videos=480, msrvtt_train_videos=2000, coin_train_videos=300),
}


def write_training_splits(world, out: str | Path, seed: int = 0, preset: str = "default") -> dict[str, dict]:
    """Add every task's training split under the world root ``out``; returns counts per folder."""
    out = Path(out)
    sizes = SIZES.get(preset, SIZES["default"])

    def rng(index: int) -> np.random.Generator:  # streams apart from generate's [seed, 1..7]
        return np.random.default_rng([seed, 100 + index])

    counts = {"youcook2": write_youcook2_train(world, out / "youcook2", rng(1), sizes)}
    msrvtt = write_msrvtt_train(world, out / "msrvtt", rng(2), sizes)
    counts["msrvtt"] = msrvtt
    counts["msrvtt_qa"] = copy_msrvtt_train(out / "msrvtt", out / "msrvtt_qa")
    counts["coin"] = write_coin_train(world, out / "coin", rng(3), sizes)
    return counts


def _duration(rng: np.random.Generator, seconds: tuple[int, int]) -> int:
    return int(rng.integers(seconds[0], seconds[1] + 1))


def _render(world, rng, folder: Path, truth, video_id: str, timeline) -> None:
    np.save(folder / "features" / f"{video_id}.npy", world.render(rng, timeline))
    truth.video_steps[video_id] = timeline.per_second().tolist()
    truth.video_tasks[video_id] = timeline.task.title


def write_youcook2_train(world, folder: Path, rng: np.random.Generator, sizes: SplitSizes) -> dict:
    """Kitchen videos of subset "training" in ``youcookii_annotations_trainval.json``, as the validation ones."""
    path = folder / "youcookii_annotations_trainval.json"
    data = json.loads(path.read_text())
    truth = load_truth(folder)
    kitchen = [t for t in TASKS if t.domain == "kitchen"]
    clips = 0
    for _ in range(sizes.youcook_train_videos):
        task = kitchen[int(rng.integers(len(kitchen)))]
        video_id = world.new_video_id(rng)
        timeline = world.plan(rng, task, _duration(rng, sizes.youcook_seconds), keep_prob=0.9,
                              background=(0.15, 0.35))
        _render(world, rng, folder, truth, video_id, timeline)
        annotations = []
        for step, start, end in timeline.segments:  # annotators' boundaries are off by up to a second
            s = max(0, start + int(rng.integers(-1, 2)))
            e = min(timeline.duration, end + int(rng.integers(-1, 2)))
            annotations.append({"segment": [s, e], "id": len(annotations),
                                "sentence": annotation(rng, STEPS[step], task.domain)})
        clips += len(annotations)
        data["database"][video_id] = {"duration": float(timeline.duration), "subset": "training",
                                      "recipe_type": str(101 + task.index), "annotations": annotations,
                                      "video_url": f"https://www.youtube.com/watch?v={video_id}"}
    path.write_text(json.dumps(data))
    truth.save(folder)
    return {"train_videos": sizes.youcook_train_videos, "train_clips": clips}


def write_msrvtt_train(world, folder: Path, rng: np.random.Generator, sizes: SplitSizes) -> dict:
    """Training clips ``video0..`` (the real training ids; the test ids start at video7010) with captions.

    ``MSRVTT_train.9k.csv`` lists the training videos (column ``video_id``); ``MSRVTT_data.json``
    holds ``{"videos": [{"video_id", "split"}], "sentences": [{"sen_id", "video_id", "caption"}]}``,
    the official MSR-VTT annotation layout. Each clip shows one or two consecutive steps of a task;
    every caption describes its longest step.
    """
    truth = load_truth(folder)
    if sizes.msrvtt_train_videos > 7010:
        raise ValueError(f"msrvtt_train_videos={sizes.msrvtt_train_videos}: training ids video0.. would reach "
                         "the test ids (video7010..)")
    videos, sentences = [], []
    for number in range(sizes.msrvtt_train_videos):
        video_id = f"video{number}"
        task = TASKS[int(rng.integers(len(TASKS)))]
        first = int(rng.integers(len(task.steps)))
        positions = [first] if (rng.random() < 0.6 or first + 1 == len(task.steps)) else [first, first + 1]
        timeline = world.plan(rng, task, _duration(rng, sizes.msrvtt_seconds), background=(0.05, 0.25),
                              positions=positions)
        _render(world, rng, folder, truth, video_id, timeline)
        step = max(timeline.segments, key=lambda segment: segment[2] - segment[1])[0]
        videos.append({"video_id": video_id, "split": "train", "category": task.index})
        for _ in range(sizes.msrvtt_captions):
            sentences.append({"sen_id": len(sentences), "video_id": video_id,
                              "caption": description(rng, STEPS[step], task.domain)})
    with open(folder / MSRVTT_TRAIN_LIST, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video_id"])
        writer.writerows([v["video_id"]] for v in videos)
    (folder / MSRVTT_DATA).write_text(json.dumps({"videos": videos, "sentences": sentences}))
    truth.save(folder)
    return {"train_videos": len(videos), "train_captions": len(sentences)}


def copy_msrvtt_train(source: Path, folder: Path) -> dict:
    """The same training videos and files in the QA folder (the reference trains QA on MSR-VTT retrieval)."""
    source_truth, truth = load_truth(source), load_truth(folder)
    video_ids = [line.strip() for line in (source / MSRVTT_TRAIN_LIST).read_text().splitlines()[1:]]
    for name in (MSRVTT_TRAIN_LIST, MSRVTT_DATA):
        (folder / name).write_bytes((source / name).read_bytes())
    for video_id in video_ids:
        (folder / "features" / f"{video_id}.npy").write_bytes((source / "features" / f"{video_id}.npy").read_bytes())
        truth.video_steps[video_id] = source_truth.video_steps[video_id]
        truth.video_tasks[video_id] = source_truth.video_tasks[video_id]
    truth.save(folder)
    return {"train_videos": len(video_ids)}


def write_coin_train(world, folder: Path, rng: np.random.Generator, sizes: SplitSizes) -> dict:
    """More videos of subset "training" in ``COIN.json``, labelled with the testing subset's label ids
    (a step without a label there is left unannotated: background, as generate does)."""
    path = folder / "COIN.json"
    data = json.loads(path.read_text())
    truth = load_truth(folder)
    label_of = {step: i + 1 for i, step in enumerate(truth.label_steps)}  # label ids 1..N; 0 is background
    for _ in range(sizes.coin_train_videos):
        task = TASKS[int(rng.integers(len(TASKS)))]
        timeline = world.plan(rng, task, _duration(rng, sizes.coin_seconds), background=(0.45, 0.65), min_step=3)
        video_id = world.new_video_id(rng)
        _render(world, rng, folder, truth, video_id, timeline)
        data["database"][video_id] = {
            "recipe_type": task.index, "class": task.title, "subset": "training",
            "start": 0.0, "end": float(timeline.duration), "duration": float(timeline.duration),
            "video_url": f"https://www.youtube.com/embed/{video_id}",
            "annotation": [{"id": str(label_of[step]), "segment": [float(start), float(end)],
                            "label": STEPS[step].label}
                           for step, start, end in timeline.segments if step in label_of],
        }
    path.write_text(json.dumps(data))
    truth.save(folder)
    training = sum(video["subset"] == "training" for video in data["database"].values())
    return {"train_videos": training}
