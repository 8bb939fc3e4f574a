"""``python -m vclip.synthetic``: write a synthetic world in the real layouts of every dataset.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4: pre-training on HowTo100M and zero-shot evaluation
on YouCook2, MSR-VTT (retrieval and multiple choice), CrossTask, COIN and DiDeMo. Reference layouts:
fairseq ``examples/MMPT``, ``mmpt/processors/dsprocessor.py`` and ``how2processor.py``; documented in
``data/README.md`` and ``docs/data.md``.

The headline evaluation set is the YouCook2-like one: clips of many tasks of one domain (the kitchen),
one task per video, each caption naming its step *and* its task ("chop the onion to make mushroom
soup"), so that every query has exactly one right clip (the oracle is near 100 R@1) and a model must
tell apart both the steps of one task and sibling tasks that share a step.

Output (``WORLD.json`` is written last, so its presence means the world is complete)::

    <out>/WORLD.json
    <out>/pretrain/{features/, raw_caption.json, train.lst, val.lst}
    <out>/youcook2/{features/, validation_youcook.csv, youcookii_annotations_trainval.json}
    <out>/msrvtt/{features/, MSRVTT_JSFUSION_test.csv}
    <out>/msrvtt_qa/{features/, MSR_MC_test.csv}
    <out>/crosstask/{features/, crosstask_release/{tasks_primary.txt, tasks_related.txt, videos.csv,
                     videos_val.csv, annotations/<task>_<video>.csv}}
    <out>/coin/{features/, COIN.json}
    <out>/didemo/{features/, test_data.json}

and ``synthetic_truth.json`` (the latent truth, :mod:`vclip.data.truth`) in every folder.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vclip.data.truth import TRUTH_FILE, SyntheticTruth
from vclip.progress import progress_bar
from vclip.synthetic.language import STEPS, TASKS, TASKS_BY_TITLE, Task, annotation, description
from vclip.synthetic.splits import write_training_splits
from vclip.synthetic.world import FeatureScales, NarrationStyle, Timeline, World

logger = logging.getLogger(__name__)

WORLD_FILE = "WORLD.json"
WORLD_FORMAT = "vclip-synthetic-world/1"
FOLDERS = ("pretrain", "youcook2", "msrvtt", "msrvtt_qa", "crosstask", "coin", "didemo")
CROSSTASK_PRIMARY = ("make a mushroom omelette", "make chicken curry", "change the tire of a car",
                     "paint the bedroom wall", "plant roses")
CROSSTASK_RELATED = ("make a tomato omelette", "change the tire of a truck", "paint the office wall")


@dataclass
class WorldConfig:
    """Sizes of a synthetic world. Seconds ranges are inclusive (low, high)."""

    # pre-training: the reference groups train videos by 32 and keeps a multiple of 256 (``mmpt/processors/how2processor.py``)
    pretrain_train: int = 512
    pretrain_val: int = 64
    pretrain_seconds: tuple[int, int] = (60, 240)
    youcook_videos: int = 60  # ~7 annotated steps each
    youcook_seconds: tuple[int, int] = (60, 180)
    msrvtt_clips: int = 300
    msrvtt_qa_items: int = 300
    clip_seconds: tuple[int, int] = (10, 30)  # MSR-VTT clips
    # CrossTask: the reference trains on 30 random videos of each primary task and tests on the rest
    crosstask_videos_per_primary: int = 45  # of which crosstask_val_per_primary are also in videos_val.csv
    crosstask_val_per_primary: int = 3
    crosstask_videos_per_related: int = 10
    crosstask_seconds: tuple[int, int] = (50, 150)
    coin_testing: int = 80
    coin_training: int = 20
    coin_seconds: tuple[int, int] = (40, 150)
    didemo_videos: int = 120  # 25-30 s each, 2-3 queries each
    # DiDeMo: the share of moments spanning 1, 2, 3, 4 five-second chunks (the real test and val files:
    # 72%, 22%, 4%, 1%, and under 1% five or six)
    didemo_chunks: tuple[float, ...] = (0.72, 0.22, 0.045, 0.015)
    tasks_per_domain: int | None = None  # None: every task of language.TASKS (hundreds per domain)
    scales: FeatureScales = field(default_factory=FeatureScales)
    style: NarrationStyle = field(default_factory=NarrationStyle)


PRESETS: dict[str, dict] = {
    "default": {},  # ~85k seconds of pre-training video; generates in ~10 s on 2 cores
    # HowTo100M's regime where retrieval augmentation matters (VideoCLIP section 3.4, Table 7), at the
    # smallest size whose 5-seed ablation fits about an hour on 2 CPU cores; every number is motivated:
    "howto": dict(
        # 1024 = 4 x 256 training videos (the reference keeps a multiple of 256): 128 groups of 8 per epoch
        pretrain_train=1024, pretrain_val=128,
        # 40 tasks per domain (156 tasks: one domain has 36), 6.6 training videos per task. HowTo100M:
        # 1.22M videos of 23,611 tasks = 52 per task, but the reference's retrieval pass searches one
        # rank's share (8 ranks, ~150k videos), which holds ~6.5 videos of a task: the same as here. A
        # random pair of videos shares its task 0.6% of the time (HowTo100M 0.004%): random groups rarely do.
        tasks_per_domain=40,
        # the headline set: one video per kitchen task (40 tasks, ~7 steps each), so every caption's
        # (task, step) names exactly one clip and the oracle is near 100 (YouCook2's zero-shot queries
        # each have one right clip); a task repeated would make its clips' captions ambiguous
        youcook_videos=40,
    ),
    "large": dict(pretrain_train=2048, pretrain_val=256, youcook_videos=240, msrvtt_clips=1000,
                  msrvtt_qa_items=1000, crosstask_videos_per_primary=60, crosstask_videos_per_related=20,
                  coin_testing=300, coin_training=60, didemo_videos=400),
}


# The training a preset's world is meant for (``benchmarks/ablations.py`` reads it from WORLD.json unless
# ``--steps``/``--candidates`` are given). The reference (``mmpt/tasks/retritask.py``) rebuilds the
# retrieval groups before every epoch; these lengths train >= 2 epochs past the first, so the groups are
# rebuilt at least twice by a trained model. ``num_candidates``: neighbours searched per query video.
RECOMMENDED: dict[str, dict] = {
    # the teaching recipe's 150 updates: 2.3 epochs of 64 groups (512 videos / 8)
    "default": {"steps": 150, "num_candidates": 64,
                "why": "the teaching recipe: 150 updates = 2.3 epochs of 64 groups; groups rebuilt twice"},
    "large": {"steps": 600, "num_candidates": 64,
              "why": "2.3 epochs of 256 groups (2048 videos / 8), as the default world's 150 updates"},
    # 384 = 3 epochs of 128 groups: epoch 1's groups come from the untrained model, epochs 2 and 3's from
    # the model trained 128 and 256 updates. 16 candidates: the reference draws a group of 32 videos from
    # 64 candidates (half); groups of 8 from 16 keep that ratio. They are 1.6% of the searched videos
    # (HowTo100M: 64 of a rank's ~150k, 0.04%; a smaller fraction needs a larger world than 2 CPU cores
    # train 4 conditions x 5 seeds of in an hour); both hold about 6 videos of the query's task.
    "howto": {"steps": 384, "num_candidates": 16,
              "why": "3 epochs of 128 groups: groups built by the untrained model, then rebuilt twice by the "
                     "model trained 128 and 256 updates; 16 candidates = twice the group, as the reference's 64 "
                     "for 32, and 1.6% of the searched videos"},
}


def world_config(preset: str = "default") -> WorldConfig:
    if preset not in PRESETS:
        raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {preset!r}")
    return WorldConfig(**PRESETS[preset])


def recommended_training(preset: str, config: WorldConfig) -> dict:
    """WORLD.json's ``recommended``: {"steps", "num_candidates", "why"} for ``preset``'s world; a world
    with other sizes gets the same number of epochs (updates scaled by its groups per epoch)."""
    base = dict(RECOMMENDED.get(preset, RECOMMENDED["default"]))
    reference = world_config(preset if preset in RECOMMENDED else "default")
    if config.pretrain_train != reference.pretrain_train:
        groups = max(1, config.pretrain_train // 8)
        epochs = base["steps"] / max(1, reference.pretrain_train // 8)
        base["steps"] = max(1, int(round(epochs * groups)))
        base["why"] = f"{epochs:.1f} epochs of {groups} groups (the preset's epochs, this world's videos)"
    return base


def _base_truth(folder: str) -> SyntheticTruth:
    return SyntheticTruth(folder=folder, steps=[s.name for s in STEPS],
                          tasks={t.title: list(t.steps) for t in TASKS})


def _save_features(folder: Path, video_id: str, features: np.ndarray) -> None:
    np.save(folder / "features" / f"{video_id}.npy", features)


def _duration(rng: np.random.Generator, seconds: tuple[int, int]) -> int:
    return int(rng.integers(seconds[0], seconds[1] + 1))


def _render(world: World, rng, folder: Path, truth: SyntheticTruth, video_id: str, timeline) -> np.ndarray:
    features = world.render(rng, timeline)
    _save_features(folder, video_id, features)
    truth.video_steps[video_id] = timeline.per_second().tolist()
    truth.video_tasks[video_id] = timeline.task.title
    return features


# --------------------------------------------------------------------------------------------------


def write_pretrain(world: World, config: WorldConfig, out: Path, rng) -> dict:
    truth = _base_truth("pretrain")
    captions, ids = {}, []
    total = config.pretrain_train + config.pretrain_val
    for _ in progress_bar(range(total), desc="synthetic pretrain", leave=False, mininterval=1.0):
        task = world.tasks[int(rng.integers(len(world.tasks)))]
        video_id = world.new_video_id(rng)
        timeline = world.plan(rng, task, _duration(rng, config.pretrain_seconds))
        _render(world, rng, out, truth, video_id, timeline)
        narration = world.narrate(rng, timeline)
        captions[video_id] = narration.as_json()
        truth.caption_steps[video_id] = narration.steps
        ids.append(video_id)
    (out / "train.lst").write_text("".join(f"{v}\n" for v in ids[: config.pretrain_train]))
    (out / "val.lst").write_text("".join(f"{v}\n" for v in ids[config.pretrain_train:]))
    with open(out / "raw_caption.json", "w") as handle:
        json.dump(captions, handle)
    truth.save(out)
    return {"videos": total, "train": config.pretrain_train, "val": config.pretrain_val,
            "seconds": sum(len(s) for s in truth.video_steps.values()),
            "captions": sum(len(c["text"]) for c in captions.values())}


def write_youcook2(world: World, config: WorldConfig, out: Path, rng) -> dict:
    truth = _base_truth("youcook2")
    # one domain, a different task per video while there are enough: every annotation names its task and
    # its step, so each query has one right clip (the oracle is near 100) and a model must tell both apart
    kitchen = [t for t in world.tasks if t.domain == "kitchen"]
    order = [kitchen[i] for i in rng.permutation(len(kitchen))]
    rows, database = [], {}
    for number in range(config.youcook_videos):
        task = order[number % len(order)]
        video_id = world.new_video_id(rng)
        timeline = world.plan(rng, task, _duration(rng, config.youcook_seconds), keep_prob=0.9,
                              background=(0.15, 0.35))
        _render(world, rng, out, truth, video_id, timeline)
        recipe = str(101 + task.index)
        annotations = []
        for step, start, end in timeline.segments:  # annotators' boundaries are off by up to a second
            s = max(0, start + int(rng.integers(-1, 2)))
            e = min(timeline.duration, end + int(rng.integers(-1, 2)))
            sentence = annotation(rng, STEPS[step], task.domain, task)
            annotations.append({"segment": [s, e], "id": len(annotations), "sentence": sentence})
            rows.append({"end": e, "start": s, "task": recipe, "text": sentence, "video_id": video_id})
            truth.text_steps.append(step)
            truth.text_tasks.append(task.title)
        database[video_id] = {"duration": float(timeline.duration), "subset": "validation",
                              "recipe_type": recipe, "annotations": annotations,
                              "video_url": f"https://www.youtube.com/watch?v={video_id}"}
    with open(out / "validation_youcook.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["end", "start", "task", "text", "video_id"])
        writer.writeheader()
        writer.writerows(rows)
    with open(out / "youcookii_annotations_trainval.json", "w") as handle:
        json.dump({"database": database}, handle)
    truth.save(out)
    return {"videos": config.youcook_videos, "clips": len(rows)}


def _short_clip(world: World, rng, config: WorldConfig) -> tuple[Task, object, int]:
    """An MSR-VTT-like clip: one or two consecutive steps of a task; returns the described step."""
    task = world.tasks[int(rng.integers(len(world.tasks)))]
    first = int(rng.integers(len(task.steps)))
    positions = [first] if (rng.random() < 0.6 or first + 1 == len(task.steps)) else [first, first + 1]
    timeline = world.plan(rng, task, _duration(rng, config.clip_seconds), background=(0.05, 0.25),
                          positions=positions)
    lengths = [end - start for _, start, end in timeline.segments]
    return task, timeline, timeline.segments[int(np.argmax(lengths))][0]


def write_msrvtt(world: World, config: WorldConfig, out: Path, rng, first_number: int) -> dict:
    truth = _base_truth("msrvtt")
    rows = []
    for i in range(config.msrvtt_clips):
        number = first_number + i
        task, timeline, step = _short_clip(world, rng, config)
        _render(world, rng, out, truth, f"video{number}", timeline)
        rows.append({"key": f"ret{i}", "vid_key": f"msr{number}", "video_id": f"video{number}",
                     "sentence": description(rng, STEPS[step], task.domain)})
        truth.text_steps.append(step)
    with open(out / "MSRVTT_JSFUSION_test.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["key", "vid_key", "video_id", "sentence"])
        writer.writeheader()
        writer.writerows(rows)
    truth.save(out)
    return {"videos": len(rows), "clips": len(rows)}


def _distractors(rng, step: int, n: int = 4) -> list[int]:
    """Steps other than ``step``: half share its verb or object when possible (hard), the rest random."""
    target = STEPS[step]
    hard = [s.index for s in STEPS if s.index != step and (s.verb == target.verb or s.obj == target.obj)]
    chosen: list[int] = []
    for candidate in rng.permutation(hard)[: n // 2]:
        chosen.append(int(candidate))
    while len(chosen) < n:
        candidate = int(rng.integers(len(STEPS)))
        if candidate != step and candidate not in chosen:
            chosen.append(candidate)
    return chosen


def write_msrvtt_qa(world: World, config: WorldConfig, out: Path, rng, first_number: int) -> dict:
    truth = _base_truth("msrvtt_qa")
    rows = []
    for i in range(config.msrvtt_qa_items):
        number = first_number + i
        task, timeline, step = _short_clip(world, rng, config)
        _render(world, rng, out, truth, f"video{number}", timeline)
        candidates = _distractors(rng, step)
        answer = int(rng.integers(5))
        candidates.insert(answer, step)
        sentences = [description(rng, STEPS[s], task.domain) for s in candidates]
        rows.append([f"msr{number}", *sentences, str(answer)])
        truth.text_steps.append(step)
        truth.candidate_steps.append(candidates)
    with open(out / "MSR_MC_test.csv", "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["vid_key", "a1", "a2", "a3", "a4", "a5", "answer"])
        writer.writerows(rows)
    truth.save(out)
    return {"videos": len(rows), "items": len(rows)}


def write_crosstask(world: World, config: WorldConfig, out: Path, rng) -> dict:
    truth = _base_truth("crosstask")
    release = out / "crosstask_release"
    (release / "annotations").mkdir(parents=True)
    by_title = TASKS_BY_TITLE
    task_ids = {title: str(16815 + 4217 * by_title[title].index) for title in CROSSTASK_PRIMARY + CROSSTASK_RELATED}

    def blocks(titles) -> str:
        text = ""
        for title in titles:
            task = by_title[title]
            steps = ",".join(STEPS[s].label for s in task.steps)
            text += f"{task_ids[title]}\n{title.title()}\nhttps://www.wikihow.com/{title.title().replace(' ', '-')}\n"
            text += f"{len(task.steps)}\n{steps}\n\n"
            truth.task_steps[task_ids[title]] = list(task.steps)
        return text

    (release / "tasks_primary.txt").write_text(blocks(CROSSTASK_PRIMARY))
    (release / "tasks_related.txt").write_text(blocks(CROSSTASK_RELATED))
    videos, val_videos = [], []
    plan = [(t, config.crosstask_videos_per_primary) for t in CROSSTASK_PRIMARY]
    plan += [(t, config.crosstask_videos_per_related) for t in CROSSTASK_RELATED]
    for title, count in plan:
        task = by_title[title]
        for i in range(count):
            video_id = world.new_video_id(rng)
            timeline = world.plan(rng, task, _duration(rng, config.crosstask_seconds), keep_prob=0.85,
                                  min_step=3)
            _render(world, rng, out, truth, video_id, timeline)
            lines = [f"{position + 1},{start:.2f},{end:.2f}\n"
                     for position, (_, start, end) in zip(timeline.positions, timeline.segments)]
            (release / "annotations" / f"{task_ids[title]}_{video_id}.csv").write_text("".join(lines))
            line = f"{task_ids[title]},{video_id},https://www.youtube.com/watch?v={video_id}\n"
            videos.append(line)
            if title in CROSSTASK_PRIMARY and i < config.crosstask_val_per_primary:
                val_videos.append(line)
    (release / "videos.csv").write_text("".join(videos))
    (release / "videos_val.csv").write_text("".join(val_videos))
    truth.save(out)
    test = sum(max(0, config.crosstask_videos_per_primary - config.crosstask_val_per_primary - 30)
               for _ in CROSSTASK_PRIMARY)
    return {"videos": len(videos), "primary_tasks": len(CROSSTASK_PRIMARY),
            "related_tasks": len(CROSSTASK_RELATED), "val_videos": len(val_videos), "test_videos": test}


def write_coin(world: World, config: WorldConfig, out: Path, rng) -> dict:
    truth = _base_truth("coin")
    planned = []
    for i in range(config.coin_testing + config.coin_training):
        subset = "testing" if i < config.coin_testing else "training"
        tasks = world.tasks
        task = tasks[i % len(tasks)] if i < len(tasks) else tasks[int(rng.integers(len(tasks)))]
        # the first testing video of each task shows every step, so every label id occurs in testing
        positions = list(range(len(task.steps))) if i < len(tasks) else None
        duration = _duration(rng, config.coin_seconds)
        if positions is not None:
            duration = max(duration, 8 * len(task.steps))
        timeline = world.plan(rng, task, duration, background=(0.45, 0.65), min_step=3, positions=positions)
        planned.append((world.new_video_id(rng), subset, timeline))
    used = sorted({step for _, subset, tl in planned if subset == "testing" for step, _, _ in tl.segments})
    label_of = {step: i + 1 for i, step in enumerate(used)}  # label ids 1..N; 0 is background
    truth.label_steps = used
    database = {}
    for video_id, subset, timeline in planned:
        _render(world, rng, out, truth, video_id, timeline)
        task = timeline.task
        database[video_id] = {
            "recipe_type": task.index, "class": task.title, "subset": subset,
            "start": 0.0, "end": float(timeline.duration), "duration": float(timeline.duration),
            "video_url": f"https://www.youtube.com/embed/{video_id}",
            "annotation": [{"id": str(label_of[step]), "segment": [float(start), float(end)],
                            "label": STEPS[step].label}
                           for step, start, end in timeline.segments if step in label_of],
        }
    with open(out / "COIN.json", "w") as handle:
        json.dump({"database": database}, handle)
    truth.save(out)
    background = np.mean([s < 0 for v, steps in truth.video_steps.items()
                          if database[v]["subset"] == "testing" for s in steps])
    return {"videos": len(planned), "testing": config.coin_testing, "labels": len(used),
            "testing_background_fraction": round(float(background), 3)}


def _didemo_moments(rng, config: WorldConfig, count: int, chunks: int = 6) -> list[tuple[int, int]]:
    """``count`` disjoint moments [first, last] (chunk indices) in temporal order, their lengths drawn
    from ``config.didemo_chunks`` (redrawn until they fit in ``chunks``)."""
    shares = np.asarray(config.didemo_chunks, dtype=float)
    while True:
        lengths = 1 + rng.choice(len(shares), size=count, p=shares / shares.sum())
        if lengths.sum() <= chunks:
            break
    gaps = rng.multinomial(chunks - int(lengths.sum()), np.full(count + 1, 1.0 / (count + 1)))
    moments, at = [], int(gaps[0])
    for length, gap in zip(lengths, gaps[1:]):
        moments.append((at, at + int(length) - 1))
        at += int(length) + int(gap)
    return moments


def write_didemo(world: World, config: WorldConfig, out: Path, rng) -> dict:
    """Personal-video-like clips of 27-30 s (six 5-second chunks, the last one partial), each with 2-3
    described moments whose lengths in chunks follow the real DiDeMo distribution."""
    truth = _base_truth("didemo")
    records = []
    for i in range(config.didemo_videos):
        task = world.tasks[int(rng.integers(len(world.tasks)))]
        duration = int(rng.integers(27, 31))
        count = int(rng.integers(2, 4))
        moments = _didemo_moments(rng, config, count)
        first = int(rng.integers(max(1, len(task.steps) - count + 1)))
        positions = list(range(first, min(len(task.steps), first + count)))
        moments = moments[: len(positions)]
        segments = []
        for position, (c0, c1) in zip(positions, moments):
            end = min(duration, 5 * (c1 + 1) - int(rng.integers(0, 2)))  # the action fills its chunks,
            start = min(5 * c0 + int(rng.integers(0, 2)), end - 2)  # give or take a second
            segments.append((task.steps[position], start, end))
        timeline = Timeline(task, duration, segments, positions)
        name = f"{int(rng.integers(10**7, 10**8))}@N0{i % 8}_{int(rng.integers(10**9, 10**10))}_{rng.bytes(5).hex()}.mp4"
        _render(world, rng, out, truth, name, timeline)
        chunks = math.ceil(duration / 5)
        for (step, _, _), moment in zip(segments, moments):
            times = []
            for _ in range(4):  # four annotators, some one chunk early or late (the length is kept)
                s, e = moment
                if rng.random() < 0.25:
                    shift = int(rng.choice([-1, 1]))
                    if 0 <= s + shift and e + shift <= chunks - 1:
                        s, e = s + shift, e + shift
                times.append([int(s), int(e)])
            records.append({"annotation_id": len(records), "description": description(rng, STEPS[step], task.domain),
                            "video": name, "times": times})
            truth.text_steps.append(step)
            truth.moments.append([int(moment[0]), int(moment[1])])
    with open(out / "test_data.json", "w") as handle:
        json.dump(records, handle)
    truth.save(out)
    lengths = np.bincount([e - s + 1 for record in records for s, e in record["times"]], minlength=7)[1:]
    return {"videos": config.didemo_videos, "queries": len(records),
            "moment_chunks_percent": [round(100 * int(x) / int(lengths.sum()), 1) for x in lengths]}


# --------------------------------------------------------------------------------------------------


def generate(out: str | Path, preset: str = "default", seed: int = 0, overwrite: bool = False,
             config: WorldConfig | None = None) -> dict:
    """Write a whole synthetic world under ``out`` and return the contents of ``WORLD.json``.

    A folder holding a complete world (``WORLD.json``) is only replaced with ``overwrite=True``; an
    incomplete one (an interrupted run) is replaced. Only the folders this program writes are removed,
    and only when they hold its ``synthetic_truth.json`` (or nothing): other data is never deleted.
    """
    out = Path(out)
    config = config or world_config(preset)
    if (out / WORLD_FILE).exists():
        if not overwrite:
            raise FileExistsError(f"{out / WORLD_FILE} exists: a complete world is already there "
                                  f"(pass --overwrite to replace it)")
        (out / WORLD_FILE).unlink()
    for name in FOLDERS:
        if (out / name).exists():
            if not (out / name / TRUTH_FILE).exists() and any((out / name).iterdir()):
                raise FileExistsError(f"{out / name} exists and was not written by this program (no {TRUTH_FILE}); "
                                      f"refusing to replace it: choose another --out")
            shutil.rmtree(out / name)
    world = World(seed, config.scales, config.style, config.tasks_per_domain)
    counts = {}
    writers = {
        "pretrain": lambda folder, rng: write_pretrain(world, config, folder, rng),
        "youcook2": lambda folder, rng: write_youcook2(world, config, folder, rng),
        "msrvtt": lambda folder, rng: write_msrvtt(world, config, folder, rng, 7010),
        "msrvtt_qa": lambda folder, rng: write_msrvtt_qa(world, config, folder, rng, 7010 + config.msrvtt_clips),
        "crosstask": lambda folder, rng: write_crosstask(world, config, folder, rng),
        "coin": lambda folder, rng: write_coin(world, config, folder, rng),
        "didemo": lambda folder, rng: write_didemo(world, config, folder, rng),
    }
    for index, name in enumerate(FOLDERS, start=1):
        folder = out / name
        (folder / "features").mkdir(parents=True)
        started = time.perf_counter()
        counts[name] = writers[name](folder, np.random.default_rng([seed, index]))
        logger.info("synthetic %s: %s (%.1f s)", name, counts[name], time.perf_counter() - started)
    for name, split_counts in write_training_splits(world, out, seed, preset).items():  # fine-tuning data
        counts[name].update(split_counts)
    record = {"format": WORLD_FORMAT, "preset": preset, "seed": seed, "counts": counts,
              "steps": len(STEPS), "tasks": len(world.tasks), "config": dataclasses.asdict(config),
              "recommended": recommended_training(preset, config)}
    with open(out / WORLD_FILE, "w") as handle:
        json.dump(record, handle, indent=1)
    return record
