"""Measure, with the world's latent truth, what the paper's two ideas change in a training batch.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 3.3 (narration is only loosely aligned with what is
shown, so a video clip *overlapping* its text clip shows the described step more often than the
exactly aligned one) and 3.4 (retrieval puts similar videos in one batch: harder negatives, but also
more negatives that in truth show the same step). Reference: ``mmpt/processors/how2processor.py``
(the overlapped and exact aligners) and ``mmpt/tasks/retritask.py`` (retrieval-augmented groups).

* :func:`same_task_share`: the share of video pairs in groups that show the same task (HowTo100M: a
  random pair does about 0.004% of the time, 23,611 tasks over 1.22M videos).
* :func:`sample_truth_pairs`: clip pairs drawn exactly as training draws them, each with the latent
  step its text speaks of and the latent step of every second its video clip shows.
* :func:`containment`: seconds of each video clip that show the step its text clip speaks of.
* :func:`false_negative_share`: the share of a group's negative pairs whose video clip in truth shows
  the step the text speaks of (split within a video and across videos).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vclip.sampling import SamplingConfig, sample_clip_pairs
from vclip.synthetic.truth import SyntheticTruth

HOWTO100M_SAME_TASK_PERCENT = 100 / 23_611  # two random HowTo100M videos share a task (uniform tasks)


def same_task_share(groups: Sequence[Sequence[int]], video_tasks: Sequence[str]) -> float:
    """Percentage of the distinct-video pairs inside ``groups`` (indices into ``video_tasks``) that
    show the same task."""
    same = total = 0
    for group in groups:
        tasks = [video_tasks[i] for i in group]
        for a in range(len(tasks)):
            for b in range(a + 1, len(tasks)):
                same += tasks[a] == tasks[b]
                total += 1
    return 100.0 * same / max(total, 1)


def random_pair_same_task(video_tasks: Sequence[str]) -> float:
    """Percentage of all distinct-video pairs of a collection that show the same task."""
    _, counts = np.unique(np.asarray(video_tasks), return_counts=True)
    n = len(video_tasks)
    return 100.0 * float((counts * (counts - 1)).sum()) / max(n * (n - 1), 1)


@dataclass
class TruthPair:
    """One sampled clip pair with its latent truth."""

    video: int  # position of the pair's video in the group
    text_step: int  # the latent step most of the text clip's narrated words are about (-1: none)
    seconds: np.ndarray  # latent step of each second of the video clip


def _text_step(raw_starts, raw_ends, raw_steps, start: float, end: float) -> int:
    """The majority step (background excluded) of the raw caption lines said inside [start, end]."""
    starts, ends, steps = np.asarray(raw_starts), np.asarray(raw_ends), np.asarray(raw_steps)
    inside = (starts >= start - 1e-6) & (ends <= end + 1e-6) & (steps >= 0)
    if not inside.any():
        return -1
    values, counts = np.unique(steps[inside], return_counts=True)
    return int(values[np.argmax(counts)])


def sample_truth_pairs(store, truth: SyntheticTruth, raw_captions: dict, video_ids: Sequence[str],
                       clips_per_video: int, rng: np.random.Generator,
                       config: SamplingConfig | None = None) -> list[TruthPair]:
    """Draw ``clips_per_video`` pairs from each video as training does, with their latent truth.

    ``store``: the pre-training store (de-duplicated, tokenised captions); ``raw_captions``: the
    folder's ``raw_caption.json`` ({video: {"start", "end", "text"}}), whose lines ``truth.caption_steps``
    labels; the text clip's step is read from the raw lines said within its time span.
    """
    config = config or SamplingConfig()
    pairs = []
    for position, video_id in enumerate(video_ids):
        starts, ends, tokens = store.captions(video_id)
        seconds = truth.seconds(video_id)
        raw = raw_captions[video_id]
        for pair in sample_clip_pairs(len(seconds), starts, ends, tokens, clips_per_video, rng, config):
            step = _text_step(raw["start"], raw["end"], truth.caption_steps[video_id],
                              float(starts[pair.text_first]), float(ends[pair.text_last]))
            pairs.append(TruthPair(position, step, seconds[pair.video_start:pair.video_end]))
    return pairs


def containment(pairs: Sequence[TruthPair]) -> np.ndarray:
    """(N,) seconds of each pair's video clip that show the step its text speaks of (pairs whose text
    speaks of no step are left out)."""
    return np.array([int((p.seconds == p.text_step).sum()) for p in pairs if p.text_step >= 0])


def _majority(seconds: np.ndarray) -> int:
    shown = seconds[seconds >= 0]
    if len(shown) == 0:
        return -1
    values, counts = np.unique(shown, return_counts=True)
    return int(values[np.argmax(counts)])


def false_negative_share(pairs: Sequence[TruthPair]) -> dict:
    """Percentages of a group's negative (text i, video clip j != i) pairs whose video clip mostly shows
    text i's step: over all negatives, over negatives from the same video and from other videos."""
    text = np.array([p.text_step for p in pairs])
    clip = np.array([_majority(p.seconds) for p in pairs])
    video = np.array([p.video for p in pairs])
    false = (text[:, None] == clip[None, :]) & (text[:, None] >= 0)
    negative = ~np.eye(len(pairs), dtype=bool)
    same_video = video[:, None] == video[None, :]
    share = {}
    for name, mask in (("all", negative), ("same_video", negative & same_video), ("other_video", negative & ~same_video)):
        share[name] = 100.0 * float(false[mask].mean()) if mask.any() else 0.0
    return share


def moment_length_shares(queries, max_chunks: int = 6) -> np.ndarray:
    """(max_chunks,) percentage of the annotated moments (every annotator's ``times``) of DiDeMo queries
    (:func:`vclip.data.read_didemo`) that span 1, 2, ... 5-second chunks."""
    lengths = np.array([e - s + 1 for query in queries for s, e in query.times])
    return 100.0 * np.bincount(lengths, minlength=max_chunks + 1)[1:max_chunks + 1] / max(len(lengths), 1)


def group_shares(groups: Sequence[Sequence[int]], video_ids: Sequence[str], truth: SyntheticTruth) -> dict:
    """Percentage of the video pairs inside ``groups`` (indices into ``video_ids``) that share the task,
    the base ("make _ soup": sibling tasks) and the domain."""
    from vclip.synthetic.language import TASKS_BY_TITLE

    tasks = [TASKS_BY_TITLE[truth.video_tasks[v]] for v in video_ids]
    return {"same task": same_task_share(groups, [t.title for t in tasks]),
            "same base": same_task_share(groups, [f"{t.domain}/{t.base}" for t in tasks]),
            "same domain": same_task_share(groups, [t.domain for t in tasks])}


RETRIEVAL_VIEWS = ("youcook2", "youcook2_within_video", "youcook2_same_step", "msrvtt")


def retrieval_views(model, world, config=None) -> dict[str, dict]:
    """Text->video R@1/5/10 of ``model`` on a synthetic world, seen four ways (:data:`RETRIEVAL_VIEWS`):

    * ``youcook2``: the headline set, every clip a candidate (one domain, many tasks, each caption
      naming its task and step);
    * ``youcook2_within_video``: each text against the clips of its own video only (the steps of one
      task: what the negatives from the same video already teach);
    * ``youcook2_same_step``: each text against its clip and the clips of *other* videos that show the
      same step (sibling tasks: what negatives from similar videos teach); texts without such rivals
      are left out;
    * ``msrvtt``: the MSR-VTT-like set, whole short clips of every domain, descriptions without the task.
    """
    from pathlib import Path

    from vclip.evaluate import evaluate_task
    from vclip.metrics import retrieval_metrics
    from vclip.synthetic.truth import load_truth
    from vclip.tasks import load_task_data
    from vclip.tasks.common import EvalConfig, encode_clips_once, encode_texts_once, eval_mode

    world = Path(world)
    config = config or EvalConfig(progress=False)
    folder = world / "youcook2"
    data, truth = load_task_data("youcook2", folder, config), load_truth(folder)
    with eval_mode(model):
        text = encode_texts_once(model, data.texts, config, desc="youcook2 texts")
        video = encode_clips_once(model, data.keys, data.clips, config, desc="youcook2 clips")
    sim = (text @ video.T).double().numpy()
    views = {"youcook2": {k: v for k, v in retrieval_metrics(sim).items() if k != "MeanR"}}
    videos = np.asarray([key[0] for key in data.keys])
    steps = np.asarray([truth.text_steps[r] for r in data.rows])
    shown = np.asarray([truth.clip_step(*key) for key in data.keys])
    within, same_step = [], []
    for i in range(len(data.rows)):
        beats = sim[i] >= sim[i, i]  # ties count against the model, as everywhere in the kit
        beats[i] = False
        mine = videos == videos[i]
        within.append(int((beats & mine).sum()))
        rivals = ~mine & (shown == steps[i])
        if rivals.any():
            same_step.append(int((beats & rivals).sum()))
    views["youcook2_within_video"] = _recalls(np.asarray(within))
    views["youcook2_same_step"] = _recalls(np.asarray(same_step))
    if (world / "msrvtt").is_dir():
        metrics = evaluate_task(model, "msrvtt", world, config).metrics
        views["msrvtt"] = {k: metrics[k] for k in ("R@1", "R@5", "R@10", "MedR", "N")}
    return views


def _recalls(ranks: np.ndarray) -> dict:
    """R@1/5/10 (percent), MedR and N from 0-based ranks."""
    ranks = np.asarray(ranks)
    return {"R@1": 100.0 * float((ranks < 1).mean()), "R@5": 100.0 * float((ranks < 5).mean()),
            "R@10": 100.0 * float((ranks < 10).mean()), "MedR": float(np.median(ranks + 1)), "N": int(len(ranks))}


def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t with ``df`` degrees of freedom (bisection on its numerically
    integrated density; accurate to about 1e-6 for p in [0.5, 0.999])."""
    import math

    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(x: float) -> float:  # P(T <= x) for x >= 0, by Simpson's rule on [0, x]
        n = 2000
        h = x / n
        pdf = [math.exp(log_c - (df + 1) / 2 * math.log1p((i * h) ** 2 / df)) for i in range(n + 1)]
        return 0.5 + h / 3 * (pdf[0] + pdf[-1] + 4 * sum(pdf[1:-1:2]) + 2 * sum(pdf[2:-1:2]))

    low, high = 0.0, 1000.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if cdf(mid) < p else (low, mid)
    return (low + high) / 2


def t_half_width(differences, level: float = 0.95) -> float:
    """Half-width of the ``level`` t-interval of the mean of paired ``differences`` (at least 2)."""
    d = np.asarray(differences, dtype=float)
    return t_quantile(0.5 + level / 2, len(d) - 1) * float(d.std(ddof=1)) / float(np.sqrt(len(d)))


def verdict(mean: float, half_width: float) -> str:
    """Plain words for a paired difference (idea minus ablation) and its interval half-width."""
    if mean - half_width > 0:
        return "helps"
    if mean + half_width < 0:
        return "hurts"
    return "no difference these seeds can detect"


def verdict_title(difference: tuple[float, float], idea: str, ablation: str) -> str:
    """A figure title stating the finding for the headline difference (mean, half-width)."""
    words = {"helps": f"{idea} beat {ablation}", "hurts": f"{ablation} beat {idea}",
             "no difference these seeds can detect": f"{idea} and {ablation} are not told apart"}
    return f"On the headline set, {words[verdict(*difference)]} (mean difference {difference[0]:+.1f} points)"


def segments(labels: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of one latent step (background excluded) in per-second ``labels``."""
    labels = np.asarray(labels)
    runs, start = [], 0
    for t in range(1, len(labels) + 1):
        if t == len(labels) or labels[t] != labels[start]:
            if labels[start] >= 0:
                runs.append((start, t))
            start = t
    return runs


def sweep_title(points: list[dict], view: str = "youcook2_same_step") -> str:
    """A title stating where retrieval helped in a tasks-per-domain sweep (``points`` of
    ``benchmarks/sweep_tasks_per_domain.py``): the values whose interval on ``view`` is above zero."""
    helped = []
    for point in points:
        d = point["summary"][view]["no_retrieval"]["R@1"]["minus_paper"]
        if d["high"] is not None and d["high"] < 0:  # no_retrieval minus paper below zero: paper better
            helped.append(str(point["tasks_per_domain"] or "all"))
    if not helped:
        return f"Retrieval never beat random groups beyond seed noise on {view}"
    return f"Retrieval beat random groups beyond seed noise on {view} only with {', '.join(helped)} tasks per domain"
