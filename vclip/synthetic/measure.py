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
  the step the text speaks of (split within a video and across videos);
  :func:`false_negatives_by_source` splits them by the same video, the same task, other tasks.
* :func:`group_hardness` and :func:`group_mechanism`: the paper's argument for retrieval (harder
  negatives give more signal per update) measured at one fixed model: the loss, the gradient norm and
  the margin between each text's positive and its hardest negative, on retrieved against random groups
  of the same size, with their false negatives.
* :func:`regime`: a world's retrieval regime (videos per task, candidates, shares of random and
  retrieved groups) beside HowTo100M's.

Every measurement counts only the seconds the model reads: the first ``max_video_len`` of a video clip
(:func:`vclip.sampling.collate_pairs`), not the whole sampled span.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vclip.data.truth import SyntheticTruth
from vclip.sampling import SamplingConfig, sample_clip_pairs

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
    seconds: np.ndarray  # latent step of each second of the video clip the model reads (<= max_video_len)


def narrated_step(raw_starts, raw_ends, raw_steps, start: float, end: float) -> int:
    """The majority step (background excluded) of the raw caption lines said inside [start, end].

    The clip's times come from the store, which keeps caption times as float32; the raw lines' times are
    float64. Both are compared in float32, so a line that ends exactly where the clip ends (148.56 s is
    148.5599976 in float32) counts as inside.
    """
    starts = np.asarray(raw_starts, dtype=np.float32)
    ends = np.asarray(raw_ends, dtype=np.float32)
    steps = np.asarray(raw_steps)
    inside = (starts >= np.float32(start)) & (ends <= np.float32(end)) & (steps >= 0)
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
    labels; the text clip's step is read from the raw lines said within its time span. Each pair keeps
    the seconds the model *reads*: the first ``config.max_video_len`` of its video clip, as
    :func:`vclip.sampling.collate_pairs` truncates it (an exact clip of a long text clip is longer).
    """
    config = config or SamplingConfig()
    pairs = []
    for position, video_id in enumerate(video_ids):
        starts, ends, tokens = store.captions(video_id)
        seconds = truth.seconds(video_id)
        raw = raw_captions[video_id]
        for pair in sample_clip_pairs(len(seconds), starts, ends, tokens, clips_per_video, rng, config):
            step = narrated_step(raw["start"], raw["end"], truth.caption_steps[video_id],
                              float(starts[pair.text_first]), float(ends[pair.text_last]))
            read_end = min(pair.video_end, pair.video_start + config.max_video_len)  # as collate_pairs reads it
            pairs.append(TruthPair(position, step, seconds[pair.video_start:read_end]))
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

    from vclip.data.truth import load_truth
    from vclip.metrics import retrieval_metrics
    from vclip.tasks import evaluate_task, load_task_data
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


# --------------------------------------------------------------------------------------------------
# The mechanism of retrieval augmentation (section 3.4): are retrieved groups harder, and how much of
# their hardness is false negatives? Measured at a fixed model on groups of the same size.

FALSE_NEGATIVE_SOURCES = ("same_video", "same_task", "other_task")


def false_negatives_by_source(pairs: Sequence[TruthPair], video_tasks: Sequence[str]) -> dict:
    """Negatives (text i, video clip j != i) of one group split by where clip j comes from: the same
    video as text i, another video of the same task, a video of another task. For each source: its
    share of all negatives (``negatives_percent``) and the percentage of *all* negatives that come from
    it and in truth show text i's step (``false_percent``: the majority latent step of the seconds the
    model reads, as in :func:`false_negative_share`; the three sum to the group's false-negative share).

    ``video_tasks``: the task of each video of the group, indexed by ``TruthPair.video``.
    """
    text = np.array([p.text_step for p in pairs])
    clip = np.array([_majority(p.seconds) for p in pairs])
    video = np.array([p.video for p in pairs])
    task = np.array([video_tasks[v] for v in video])
    negative = ~np.eye(len(pairs), dtype=bool)
    false = (text[:, None] == clip[None, :]) & (text[:, None] >= 0) & negative
    same_video = video[:, None] == video[None, :]
    same_task = (task[:, None] == task[None, :]) & ~same_video
    sources = {"same_video": same_video & negative, "same_task": same_task, "other_task": ~same_video & ~same_task}
    total = max(int(negative.sum()), 1)
    return {name: {"negatives_percent": 100.0 * float(mask.sum()) / total,
                   "false_percent": 100.0 * float((false & mask).sum()) / total}
            for name, mask in sources.items()}


def group_hardness(model, batch, temperature: float | None = None, normalize: bool = False) -> dict:
    """How hard one collated group (:class:`vclip.sampling.ClipBatch`) is for ``model``, as it stands:

    * ``loss``: the training loss (:func:`vclip.loss.contrastive_loss`, both directions);
    * ``grad_norm``: the L2 norm of that loss's gradient over all parameters (the signal one update
      gets from the group, before clipping);
    * ``margin``: mean over texts of (similarity to its own clip) - (similarity to its hardest
      negative clip), as the loss's logits; negative means a negative outscores the positive;
    * ``hardest_wins_percent``: the share of texts whose hardest negative outscores their positive.

    The model runs in eval mode (no dropout: the same group always gets the same numbers); its mode and
    parameters' ``.grad`` are restored (cleared) afterwards.
    """
    import torch

    from vclip.loss import contrastive_loss

    was_training = model.training
    model.eval()
    try:
        model.zero_grad(set_to_none=True)
        out = model(batch.vfeats, batch.vmask, batch.input_ids, batch.attention_mask)
        video, text = out.pooled_video.float(), out.pooled_text.float()
        loss = contrastive_loss(video, text, temperature, normalize)
        loss.backward()
        grads = [p.grad.detach().pow(2).sum() for p in model.parameters() if p.grad is not None]
        grad_norm = float(torch.stack(grads).sum().sqrt()) if grads else 0.0
        with torch.no_grad():
            if normalize:
                video, text = torch.nn.functional.normalize(video, dim=-1), torch.nn.functional.normalize(text, dim=-1)
            sim = text @ video.T
            if temperature is not None:
                sim = sim / temperature
            positive = sim.diagonal()
            hardest = sim.masked_fill(torch.eye(len(sim), dtype=torch.bool), float("-inf")).max(dim=1).values
        return {"loss": float(loss.detach()), "grad_norm": grad_norm,
                "margin": float((positive - hardest).mean()),
                "hardest_wins_percent": 100.0 * float((hardest > positive).float().mean())}
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)


def sample_truth_group(store, truth: SyntheticTruth, raw_captions: dict, video_ids: Sequence[str],
                       clips_per_video: int, rng: np.random.Generator, config: SamplingConfig):
    """One group drawn as training draws it (:func:`vclip.sampling.sample_group`): (ClipBatch, pairs),
    the pairs (:class:`TruthPair`, in batch order) carrying the latent truth of the seconds read."""
    from vclip.sampling import collate_pairs

    feats, clip_pairs, truth_pairs = [], [], []
    for position, video_id in enumerate(video_ids):
        feat = np.asarray(store.features(video_id))
        starts, ends, tokens = store.captions(video_id)
        drawn = sample_clip_pairs(len(feat), starts, ends, tokens, clips_per_video, rng, config)
        seconds, raw = truth.seconds(video_id), raw_captions[video_id]
        for pair in drawn:
            step = narrated_step(raw["start"], raw["end"], truth.caption_steps[video_id],
                              float(starts[pair.text_first]), float(ends[pair.text_last]))
            read_end = min(pair.video_end, pair.video_start + config.max_video_len)
            truth_pairs.append(TruthPair(position, step, seconds[pair.video_start:read_end]))
        feats.append(feat)
        clip_pairs.append(drawn)
    return collate_pairs(feats, clip_pairs, config.max_video_len), truth_pairs


def _mean_dicts(rows: list[dict]) -> dict:
    out = {}
    for key, value in rows[0].items():
        out[key] = _mean_dicts([r[key] for r in rows]) if isinstance(value, dict) else float(np.mean([r[key] for r in rows]))
    return out


def group_mechanism(model, store, truth: SyntheticTruth, raw_captions: dict, video_ids: Sequence[str], cfg,
                    rng: np.random.Generator, num_groups: int = 32) -> dict:
    """Retrieved against random groups of the same size (``cfg.videos_per_group`` x ``cfg.clips_per_video``)
    at one fixed ``model``: {"random": ..., "retrieved": ...}, each the mean over ``num_groups`` groups of
    :func:`group_hardness`, :func:`false_negatives_by_source` and the same-task / base / domain shares
    of its video pairs (:func:`group_shares`).

    The retrieved groups are formed as the training's retrieval pass forms them *with this model*
    (:func:`vclip.retrieval.video_vectors` then :func:`vclip.retrieval.retrieval_groups`, ``cfg``'s
    candidates and embedding clips); ``cfg`` is a :class:`vclip.config.PretrainConfig`.
    """
    from vclip.retrieval import random_groups, retrieval_groups, video_vectors

    video_ids = list(video_ids)
    v, c = cfg.videos_per_group, cfg.clips_per_video
    vectors = video_vectors(model, store, video_ids, cfg.embed_clips_per_video or c, rng, cfg.sampling,
                            cfg.embed_videos_per_batch, "cpu", None, progress=False)
    retrieved, _ = retrieval_groups(vectors, v, rng, cfg.num_candidates, cfg.index, cfg.exact_max_videos,
                                    None, cfg.nprobe, cfg.retrieval.top_up)
    kinds = {"random": random_groups(len(video_ids), v, rng)[:num_groups], "retrieved": retrieved[:num_groups]}
    result = {}
    for kind, groups in kinds.items():
        rows = []
        for group in groups:
            ids = [video_ids[i] for i in group]
            batch, pairs = sample_truth_group(store, truth, raw_captions, ids, c, rng, cfg.sampling)
            row = group_hardness(model, batch, cfg.temperature, cfg.normalize)
            row["false_negatives"] = false_negatives_by_source(pairs, [truth.video_tasks[i] for i in ids])
            row["false_negative_percent"] = sum(s["false_percent"] for s in row["false_negatives"].values())
            rows.append(row)
        result[kind] = {**_mean_dicts(rows), "groups": len(groups),
                        **{k.replace(" ", "_") + "_percent": val
                           for k, val in group_shares(groups, video_ids, truth).items()}}
    return result


# HowTo100M's figures that decide what a retrieved group holds (Miech et al. 2019; VideoCLIP section 4.1
# and the reference's how2.yaml: 8 ranks, each searching its own share with 64 candidates per query)
HOWTO100M_REGIME = {"videos": 1_220_000, "tasks": 23_611, "videos_per_task": 52, "ranks": 8,
                    "share_videos": 150_000, "share_videos_per_task": 6.5, "candidates": 64,
                    "candidates_percent_of_share": 100 * 64 / 150_000, "random_pair_same_task_percent":
                    HOWTO100M_SAME_TASK_PERCENT}


def regime(world, num_candidates: int | None = None, seed: int = 0, groups: int = 256) -> dict:
    """The retrieval regime of a synthetic world's pre-training folder beside HowTo100M's: videos, tasks,
    videos per task, candidates as a share of the searched videos, and the same-task / same-base /
    same-domain shares of the video pairs of random groups and of groups retrieved by an *untrained*
    tiny model (the first epoch's groups; a trained model's are in the ablation result). ``world``: the
    world root; ``num_candidates``: default WORLD.json's recommendation, else 64."""
    import json
    from pathlib import Path

    import torch

    from vclip.config import load_recipe
    from vclip.data.store import open_pretrain
    from vclip.data.truth import load_truth
    from vclip.retrieval import random_groups, retrieval_groups, video_vectors

    world = Path(world)
    record = json.loads((world / "WORLD.json").read_text()) if (world / "WORLD.json").is_file() else {}
    if num_candidates is None:
        num_candidates = int((record.get("recommended") or {}).get("num_candidates", 64))
    truth = load_truth(world / "pretrain")
    store, train_ids, _ = open_pretrain(world / "pretrain")
    tasks = [truth.video_tasks[v] for v in train_ids]
    _, per_task = np.unique(tasks, return_counts=True)
    out = {"videos": len(train_ids), "tasks": len(per_task), "videos_per_task": float(per_task.mean()),
           "candidates": num_candidates, "candidates_percent": 100.0 * num_candidates / max(len(train_ids), 1),
           "random_pair_same_task_percent": random_pair_same_task(tasks)}
    cfg = load_recipe("teaching").updated(num_candidates=num_candidates, seed=seed, device="cpu", progress=False)
    v = cfg.videos_per_group
    if len(train_ids) < v:
        return out
    rng = np.random.default_rng([seed, 11])
    out["random_groups"] = group_shares(random_groups(len(train_ids), v, rng)[:groups], train_ids, truth)
    torch.manual_seed(seed)
    model = cfg.model.build()
    vectors = video_vectors(model, store, train_ids, cfg.embed_clips_per_video or cfg.clips_per_video, rng,
                            cfg.sampling, cfg.embed_videos_per_batch, "cpu", None, progress=False)
    retrieved, _ = retrieval_groups(vectors, v, rng, num_candidates, cfg.index, cfg.exact_max_videos, None,
                                    cfg.nprobe, cfg.retrieval.top_up)
    out["retrieved_groups_untrained"] = group_shares(retrieved[:groups], train_ids, truth)
    return out


def regime_lines(measured: dict) -> list[str]:
    """Plain-text lines of :func:`regime` beside HowTo100M's figures."""
    h = HOWTO100M_REGIME
    lines = [f"{'retrieval regime':<66} {'this world':>12}   HowTo100M",
             f"{'training videos (searched together)':<66} {measured['videos']:>12,}   "
             f"{h['videos']:,} ({h['share_videos']:,} per rank, {h['ranks']} ranks)",
             f"{'tasks':<66} {measured['tasks']:>12,}   {h['tasks']:,}",
             f"{'videos per task':<66} {measured['videos_per_task']:>12.1f}   "
             f"{h['videos_per_task']} ({h['share_videos_per_task']} per rank's share)",
             f"{'random pair of videos shares its task (%)':<66} {measured['random_pair_same_task_percent']:>12.3f}   "
             f"{h['random_pair_same_task_percent']:.3f}",
             f"{'candidates per query (% of searched videos)':<66} "
             f"{measured['candidates']:>5} ({measured['candidates_percent']:.2f}%)   "
             f"{h['candidates']} ({h['candidates_percent_of_share']:.2f}%)"]
    for kind, label in (("random_groups", "random groups"), ("retrieved_groups_untrained", "retrieved groups, untrained model")):
        if kind in measured:
            shares = measured[kind]
            lines.append(f"{label + ': same task / base / domain (%)':<66} "
                         f"{shares['same task']:.1f} / {shares['same base']:.1f} / {shares['same domain']:.1f}"
                         f"   not published")
    return lines
