"""Zero-shot CrossTask action-step localisation: find one second for each step of a task, in order.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (action step localisation, CrossTask). Reference:
fairseq ``examples/MMPT``, ``projects/retri/videoclip/test_crosstask_zs_videoclip.yaml``;
``mmpt/processors/dsprocessor.py`` (``CrossTaskMetaProcessor``: the seeded 30-per-primary-task
train/test split, :func:`vclip.data.crosstask_split`; ``CrossTaskAligner``: windows of 32 seconds
every 16, targets ``Y[floor(start):ceil(end), step - 1] = 1``); ``mmpt/models/mmfusion.py``
``MMFusionSeparateActionLocalization`` (per-second video states with [CLS] masked out, dot products
with the pooled step texts); ``mmpt/evaluators/predictor.py`` ``CrossTaskPredictor`` (window scores
averaged, log-softmax over steps, DmZhukov/CrossTask ``dp``: :func:`vclip.localization.step_localization`);
``metric.py`` ``CrossTaskMetric`` (:func:`vclip.metrics.crosstask_recall`). Zero-shot evaluation
uses the test part of the split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vclip.data.check import check_videos
from vclip.data.formats import check_segment, parse_number, read_text, refuse_duplicates
from vclip.errors import DataFormatError
from vclip.localization import step_localization
from vclip.metrics import crosstask_recall
from vclip.tasks.common import TaskResult, encode_texts_once, eval_mode, mean_of_dicts, window_scores
from vclip.tasks.registry import PWC, RECALLED, PaperNumber, Task, register_task
from vclip.tasks.training import VideoSplit, WindowFinetuning, overlap_note, report_lost_segments

RELEASE = "crosstask_release"


# --------------------------------------------------------------------------------------------------
# CrossTask: crosstask_release/{tasks_primary.txt, tasks_related.txt, videos.csv, videos_val.csv, annotations/}


@dataclass
class CrossTaskTask:
    task_id: str
    title: str
    url: str
    steps: list[str]  # step k (1-based in the annotation files) is steps[k - 1]


@dataclass
class CrossTaskVideo:
    task_id: str
    video_id: str
    url: str


@dataclass
class StepSegment:
    step: int  # 1-based index into the task's steps
    start: float
    end: float


@dataclass
class CrossTaskRelease:
    root: Path  # the crosstask_release folder
    primary: dict[str, CrossTaskTask]
    related: dict[str, CrossTaskTask]
    videos: list[CrossTaskVideo]
    val_videos: list[CrossTaskVideo]

    def annotation_path(self, task_id: str, video_id: str) -> Path:
        return self.root / "annotations" / f"{task_id}_{video_id}.csv"

    def annotation(self, task_id: str, video_id: str) -> list[StepSegment]:
        """The step segments of one video, validated against the task's number of steps."""
        task = self.primary.get(task_id) or self.related.get(task_id)
        n_steps = len(task.steps) if task else None
        return read_crosstask_annotation(self.annotation_path(task_id, video_id), n_steps)


def read_crosstask_tasks(path: str | Path) -> dict[str, CrossTaskTask]:
    """Read ``tasks_primary.txt``/``tasks_related.txt``: blocks of id, title, url, n_steps, steps, blank."""
    path = Path(path)
    lines = read_text(path, "CrossTask task blocks (id, title, url, n_steps, steps, blank)").splitlines()
    tasks, i = {}, 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        block = lines[i:i + 5]
        if len(block) < 5:
            raise DataFormatError(path, f"line {i + 1}", "a block of 5 lines (id, title, url, n_steps, steps)",
                                  f"{len(block)} lines")
        task_id, title, url, n_steps, steps = (line.strip() for line in block)
        if not n_steps.isdigit():
            raise DataFormatError(path, f"line {i + 4} (n_steps of task {task_id})", "an integer", repr(n_steps))
        step_list = [s.strip() for s in steps.split(",")]
        if len(step_list) != int(n_steps) or not all(step_list):
            raise DataFormatError(path, f"line {i + 5} (steps of task {task_id})",
                                  f"{n_steps} comma-separated non-empty steps", f"{len(step_list)}: {steps[:80]!r}")
        if task_id in tasks:
            raise DataFormatError(path, f"line {i + 1}", "unique task ids", f"{task_id!r} repeated")
        tasks[task_id] = CrossTaskTask(task_id, title, url, step_list)
        i += 5
    return tasks


def read_crosstask_videos(path: str | Path) -> list[CrossTaskVideo]:
    """Read ``videos.csv``/``videos_val.csv``: lines ``task,vid,url`` without a header."""
    path = Path(path)
    videos, where = [], []
    for number, line in enumerate(read_text(path, "lines task,vid,url").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().split(",")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise DataFormatError(path, f"line {number}", "task,vid,url", repr(line[:80]))
        videos.append(CrossTaskVideo(*parts))
        where.append(f"line {number}")
    refuse_duplicates(path, zip(where, ((v.task_id, v.video_id) for v in videos)), "(task, vid) pairs")
    return videos


def read_crosstask_annotation(path: str | Path, n_steps: int | None = None) -> list[StepSegment]:
    """Read ``annotations/<task>_<vid>.csv``: lines ``step (1-based),start_s,end_s``."""
    path = Path(path)
    segments = []
    for number, line in enumerate(read_text(path, "lines step,start,end").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().split(",")
        if len(parts) != 3:
            raise DataFormatError(path, f"line {number}", "step,start,end", repr(line[:80]))
        step = parts[0].strip()
        if not step.isdigit() or int(step) < 1 or (n_steps is not None and int(step) > n_steps):
            raise DataFormatError(path, f"line {number} step", f"a 1-based step index <= {n_steps}", repr(step))
        start = parse_number(path, number, "start", parts[1])
        end = parse_number(path, number, "end", parts[2])
        check_segment(path, number, start, end)
        segments.append(StepSegment(int(step), start, end))
    return segments


def read_crosstask(root: str | Path) -> CrossTaskRelease:
    """Read a ``crosstask_release`` folder (or its parent). ``tasks_related.txt`` and ``videos_val.csv``
    are optional; annotations are read on demand with :meth:`CrossTaskRelease.annotation`."""
    root = Path(root)
    if (root / "crosstask_release").is_dir():
        root = root / "crosstask_release"
    primary = read_crosstask_tasks(root / "tasks_primary.txt")
    related_path = root / "tasks_related.txt"
    related = read_crosstask_tasks(related_path) if related_path.exists() else {}
    videos = read_crosstask_videos(root / "videos.csv")
    val_path = root / "videos_val.csv"
    val_videos = read_crosstask_videos(val_path) if val_path.exists() else []
    return CrossTaskRelease(root, primary, related, videos, val_videos)


def crosstask_split(release: CrossTaskRelease, features_dir: str | Path, n_train: int = 30,
                    seed: int = 0) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The reference's random train/test split (``CrossTaskMetaProcessor``, ``dsprocessor.py:378-457``).

    Keep the videos with both a feature file and an annotation, remove ``videos_val.csv`` videos,
    keep primary and related tasks; then (``np.random.seed(seed)``, tasks in ``videos.csv`` order) each
    *primary* task with more than ``n_train`` videos gives ``n_train`` random videos to train and the
    rest to test; every other task goes to train. Returns (train, test) as {task_id: [video ids]}.
    """
    features_dir = Path(features_dir)

    def available(videos: list[CrossTaskVideo]) -> dict[str, list[str]]:
        by_task: dict[str, list[str]] = {}
        for video in videos:
            if (features_dir / f"{video.video_id}.npy").exists() and \
                    release.annotation_path(video.task_id, video.video_id).exists():
                by_task.setdefault(video.task_id, []).append(video.video_id)
        return by_task

    task_vids = available(release.videos)
    val_vids = available(release.val_videos)
    task_vids = {task: [v for v in vids if task not in val_vids or v not in val_vids[task]]
                 for task, vids in task_vids.items()}
    all_tasks = set(release.primary) | set(release.related)
    task_vids = {task: vids for task, vids in task_vids.items() if task in all_tasks}
    rng = np.random.RandomState(seed)  # == np.random.seed(0) + np.random.choice in the reference
    train, test = {}, {}
    for task, vids in task_vids.items():
        if task in release.primary and len(vids) > n_train:
            train[task] = rng.choice(vids, n_train, replace=False).tolist()
            test[task] = [v for v in vids if v not in train[task]]
        else:
            train[task] = vids
    return train, test


@dataclass
class CrossTaskSet:
    folder: Path
    n_items: int  # videos of the primary tasks listed in videos.csv (outside videos_val.csv)
    videos: list[tuple[str, str]]  # (task, video) of the test split, in split order
    steps: dict  # task -> [step text]
    targets: dict  # (task, video) -> (T, K) uint8
    features: object = None  # the FeatureFolder the videos were read from (window scoring reads it again, from memory)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    n_train: int = 0

    def result(self, scorer: str) -> TaskResult:
        result = TaskResult.start("crosstask", scorer, self.folder, self.n_items, len(self.videos), self.missing,
                                  self.notes)
        result.details["train_videos"] = self.n_train
        result.details["test_tasks"] = len(self.steps)
        return result


def read_assignment(segments, num_seconds: int, num_steps: int) -> np.ndarray:
    """(T, K) uint8 targets: ``Y[floor(start):ceil(end), step - 1] = 1`` (the reference's ``_read_assignment``)."""
    targets = np.zeros((num_seconds, num_steps), dtype=np.uint8)
    for segment in segments:
        targets[int(math.floor(segment.start)):int(math.ceil(segment.end)), segment.step - 1] = 1
    return targets


def _recall(data: CrossTaskSet, predictions: dict) -> dict:
    y_true: dict = {}
    y_pred: dict = {}
    for task, video in data.videos:
        y_true.setdefault(task, {})[video] = data.targets[task, video]
        y_pred.setdefault(task, {})[video] = predictions[task, video]
    metrics = crosstask_recall(y_true, y_pred)
    return metrics


def _localize(scores: np.ndarray, key, too_short: list) -> np.ndarray:
    """The DP's labels, or all zeros (every step missed) for a video shorter than its number of steps."""
    if scores.shape[0] < scores.shape[1]:
        too_short.append(key[1])
        return np.zeros(scores.shape, dtype=np.float32)
    return step_localization(scores)


def _finish(data: CrossTaskSet, predictions: dict, result: TaskResult, too_short: list) -> TaskResult:
    metrics = _recall(data, predictions)
    result.details["per_task_recall"] = metrics.pop("per_task")
    result.metrics = metrics
    if too_short:
        result.notes.append(f"{len(too_short)} videos are shorter (in seconds) than their number of steps: no "
                            f"ordered one-second-per-step placement exists, counted as all steps missed")
    return result


@register_task
class CrossTask(Task):
    """CrossTask action-step localisation: one second for each step of a task, in order (recall)."""

    name = "crosstask"
    title = "CrossTask action-step localisation"
    markers = (RELEASE, "tasks_primary.txt")
    metrics = ("recall",)
    protocol = ("seeded split (`np.random.seed(0)`, 30 train videos per primary task, rest = test, "
                "`videos_val.csv` removed); windows 32 / stride 16 averaged, [CLS] masked out of attention, "
                "log-softmax over steps, DP: exactly one second per step, in order; recall per task averaged "
                "over primary tasks")
    paper = (
        PaperNumber("crosstask", "zero-shot", "recall", 33.9, "section 4, action step localisation table", RECALLED,
                    confirmed=False),
        PaperNumber("crosstask", "fine-tuned", "recall", 47.3, "section 4, action step localisation table", PWC),
    )

    def load(self, folder, config, features) -> CrossTaskSet:
        """The test split of a ``crosstask`` folder (``crosstask_release/`` + ``features/``) and its targets.

        Videos of primary tasks without a feature file are counted as missing; videos without an
        annotation file are counted in a note (the reference drops both before splitting).
        """
        folder = Path(folder)
        release = read_crosstask(folder / RELEASE if (folder / RELEASE).is_dir() else folder)
        val = {(v.task_id, v.video_id) for v in release.val_videos}
        listed = [v for v in release.videos if v.task_id in release.primary and (v.task_id, v.video_id) not in val]
        missing = [v.video_id for v in listed if v.video_id not in features]
        unannotated = [v.video_id for v in listed
                       if v.video_id in features and not release.annotation_path(v.task_id, v.video_id).is_file()]
        train, test = crosstask_split(release, features.features_dir, n_train=config.crosstask_n_train,
                                      seed=config.crosstask_seed)
        data = CrossTaskSet(folder, len(listed), [], {}, {}, features, missing, [],
                            sum(len(v) for t, v in train.items() if t in release.primary))
        if unannotated:
            data.notes.append(f"{len(unannotated)} primary-task videos have no annotation file and are left out "
                              f"(as the reference), e.g. {unannotated[:3]}")
        small = sorted(t for t in release.primary if t not in test)
        if small:
            data.notes.append(f"primary tasks {small} have <= {config.crosstask_n_train} usable videos: all go to "
                              "training (as the reference), none to the test set")
        for task, videos in test.items():
            data.steps[task] = list(release.primary[task].steps)
            for video in videos:
                data.targets[task, video] = read_assignment(release.annotation(task, video), features.num_seconds(video),
                                                            len(data.steps[task]))
                data.videos.append((task, video))
        return data

    def n_evaluable(self, data: CrossTaskSet) -> int:
        return len(data.videos)

    def score(self, model, data: CrossTaskSet, config) -> TaskResult:
        """Zero-shot recall (percent, mean over the primary tasks of the test split)."""
        result = data.result("model")
        predictions, too_short = {}, []
        with eval_mode(model):
            texts = {task: encode_texts_once(model, steps, config, desc=f"crosstask steps {task}")
                     for task, steps in data.steps.items()}
            stream = ((key, data.features.features(key[1]), texts[key[0]]) for key in data.videos)
            for key, scores in window_scores(model, stream, config, total=len(data.videos), desc="crosstask videos"):
                predictions[key] = _localize(scores, key, too_short)
        return _finish(data, predictions, result, too_short)

    def chance(self, data: CrossTaskSet, config) -> TaskResult:
        """Random per-second step scores through the same log-softmax and DP, mean over draws."""
        result = data.result("chance")
        rng = np.random.default_rng(config.baseline_seed)
        draws = []
        for _ in range(config.baseline_repeats):
            too_short: list = []
            predictions = {key: _localize(rng.standard_normal(data.targets[key].shape), key, too_short)
                           for key in data.videos}
            draws.append(_recall(data, predictions))
        result.metrics = mean_of_dicts(draws)
        return result

    def oracle(self, data: CrossTaskSet, truth, config) -> TaskResult:
        """Second t scores 1 for step k when its latent step is step k's, else 0 (ties random)."""
        result = data.result("oracle")
        rng = np.random.default_rng(config.baseline_seed)
        exact = {}
        for task, video in data.videos:
            step_ids = np.asarray(truth.task_steps[task])
            exact[task, video] = (truth.seconds(video)[:, None] == step_ids[None, :]).astype(np.float64)
        draws = []
        for _ in range(config.baseline_repeats):
            too_short: list = []
            predictions = {key: _localize(s + 1e-6 * rng.random(s.shape), key, too_short) for key, s in exact.items()}
            draws.append(_recall(data, predictions))
        result.metrics = mean_of_dicts(draws)
        return result

    def check(self, report, path: Path, features_dir: Path, check_values: bool) -> None:
        folder = path if path.is_dir() else path.parent
        release = read_crosstask(folder)
        report.counts["primary tasks"] = len(release.primary)
        report.counts["related tasks"] = len(release.related)
        report.counts["videos listed"] = len(release.videos)
        seconds = check_videos(report, features_dir, [v.video_id for v in release.videos], check_values)
        missing_annotations = []
        for video in release.videos:
            if not release.annotation_path(video.task_id, video.video_id).exists():
                missing_annotations.append(f"{video.task_id}_{video.video_id}")
                continue
            try:
                release.annotation(video.task_id, video.video_id)
            except DataFormatError as error:
                report.problems.append(str(error))
        if missing_annotations:
            report.notes.append(f"{len(missing_annotations)} listed videos have no annotations/<task>_<vid>.csv "
                                f"(the reference leaves them out): {missing_annotations[:10]}")
        unknown = sorted({v.task_id for v in release.videos} - set(release.primary) - set(release.related))
        if unknown:
            report.notes.append(f"videos.csv names tasks in neither tasks file (left out): {unknown[:10]}")
        train, test = crosstask_split(release, features_dir)
        report.counts["test videos (reference split: 30 train per primary task)"] = sum(len(v) for v in test.values())
        report.usable_items = sum(len(v) for v in test.values())
        if not report.usable_items and seconds:
            report.problems.append(f"FATAL {release.root / 'videos.csv'}: videos per primary task: expected more "
                                   f"than 30 with features and annotations (the reference trains on 30 and tests on "
                                   f"the rest), found {max((len(v) for v in train.values()), default=0)} at most")


# --------------------------------------------------------------------------------------------------
# Fine-tuning (vclip.tasks.training): projects/retri/videoclip/crosstask_videoclip.yaml


def crosstask_training_split(folder: Path, split: str, val_fraction: float = 0.0, seed: int = 0,
                             n_train: int = 30, split_seed: int = 0) -> VideoSplit:
    """CrossTask's training part of the reference's split (:func:`crosstask_split`: 30 videos per primary
    task and every related task), ``videos_val.csv`` (``val``; ``val_fraction`` and ``seed`` do not
    apply) or the test part (``test``: the reference's validation split, on which its
    ``checkpoint_best.pt`` is chosen)."""
    from vclip.data.store import FeatureFolder
    from vclip.tasks.common import FEATURES_DIR

    folder = Path(folder)
    release = read_crosstask(folder / RELEASE if (folder / RELEASE).is_dir() else folder)
    cache = FeatureFolder(folder / FEATURES_DIR)
    tasks = {**release.related, **release.primary}
    chosen, test = crosstask_split(release, cache.features_dir, n_train=n_train, seed=split_seed)
    if split == "train":
        pairs = [(task, video) for task, videos in chosen.items() for video in videos]
        listed = len(release.videos)
    elif split == "test":
        pairs = [(task, video) for task, videos in test.items() for video in videos]
        listed = len(pairs)
    else:
        pairs = [(v.task_id, v.video_id) for v in release.val_videos if v.task_id in tasks]
        listed = len(pairs)
    evaluated = set() if split == "test" else {video for videos in test.values() for video in videos}
    data = VideoSplit("crosstask", split, [], {}, {}, n_items=listed,
                      source=f"training list: the reference's split of videos.csv (seed {split_seed}, {n_train} "
                             f"per primary task, every related task), {sum(map(len, chosen.values()))} videos")
    left_out, unannotated, outside, labelled = [], [], [], 0
    for task, video in pairs:
        if video in evaluated:
            left_out.append(video)
            continue
        if video not in cache:
            data.missing.append(video)
            continue
        if not release.annotation_path(task, video).is_file():
            unannotated.append(video)
            continue
        features = cache.features(video)
        steps = list(tasks[task].steps)
        segments = release.annotation(task, video)
        data.video_ids.append(video)
        data.features[video] = features
        data.targets[video] = read_assignment(segments, len(features), len(steps))
        data.texts[video] = steps
        labelled += len(segments)
        outside += [f"{task}_{video}.csv segment {i}" for i, segment in enumerate(segments)
                    if math.floor(segment.start) >= len(features)]
    report_lost_segments(data, release.root / "annotations", outside, labelled, "step segments")
    data.notes += overlap_note(left_out, "crosstask")
    if unannotated:
        data.notes.append(f"{len(unannotated)} {split} videos have no annotation file and are left out")
    return data


class CrossTaskFinetuning(WindowFinetuning):
    """No new weights: the zero-shot scorer ``states @ step_texts.T``, trained with binary cross-entropy
    per (second, step) cell (``MMFusionSeparateActionLocalization``, ``mmpt/losses/loss.py`` ``BCE``)."""

    loss_name = "localisation_bce"
    test_selection = "lowest_test_loss"  # the reference's CrossTask "valid" split is its test split
    training_files = ("crosstask_release", "videos.csv")
    val_source = "videos_val.csv"

    def loss(self, model, head, batch: dict):
        from vclip.tasks.heads import localisation_loss, localisation_scores

        states = model.video_token_states(batch["vfeats"], batch["vmask"], attend_cls=False)  # (N, 32, H)
        steps = model.encode_text(batch["input_ids"], batch["attention_mask"])  # (K, H)
        return localisation_loss(localisation_scores(states, steps), batch["targets"], batch["vmask"])

    def window_targets(self, split, video_id, windows, tokens) -> dict:
        import torch

        from vclip.tokenizer import build_text_batch

        rows = self.padded_rows(split.targets[video_id], windows, 0, np.float32)
        input_ids, attention_mask = build_text_batch([tokens[t] for t in split.texts[video_id]])
        return {"targets": torch.from_numpy(rows), "input_ids": input_ids, "attention_mask": attention_mask}


CrossTask.finetuning = CrossTaskFinetuning("crosstask", crosstask_training_split)
