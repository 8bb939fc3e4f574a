"""The paper's knobs as widgets: move the loss temperature, the group size, the candidates and the videos per
group, and see at once what a training group of the tiny model becomes.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 3.2, "Contrastive Loss" (InfoNCE over the B pairs of a group,
no temperature: tau = 1 on raw dot products), section 3.3 "Overlapped Video-Text Clips" (each of a group's
videos gives C overlapped clip pairs, so B = V x C) and section 3.4 "Retrieval Augmented Training" (a group is
V videos drawn from a query video's k nearest neighbours). Reference (fairseq ``examples/MMPT``):
``mmpt/losses/nce.py`` (``MMContraLoss``), ``mmpt/processors/how2processor.py`` (``OverlappedAligner``) and
``mmpt/tasks/retritask.py`` (``VideoRetriPredictor``: 32 videos of 64 candidates, 16 clips each).

For one setting of the knobs, :func:`knob_view` forms random groups and retrieved groups of the synthetic
world's pre-training videos (:func:`vclip.retrieval.random_groups`, :func:`vclip.retrieval.retrieval_groups`
over the model's video vectors) and measures, against the world's latent truth (:mod:`vclip.synthetic.measure`):

* the loss of the model as it stands (:func:`vclip.loss.contrastive_loss`) on the first ``num_groups`` groups
  of each kind, beside 2 log B, the loss of equal logits;
* the share of video pairs inside the groups that show the same task (all the groups formed);
* the share of a group's negatives (text i, video clip j != i) whose clip in truth shows text i's step: false
  negatives (:func:`vclip.synthetic.measure.false_negative_share`), on the measured groups;
* the similarity matrix of the first group of each kind with its false negatives marked (:func:`knob_figure`).

Each video's clip pairs are one fixed stream (the first C of a per-video draw, seeded by ``seed`` and the
video's position), and each pair is encoded once (:class:`KnobWorld` keeps the embeddings): a move of a knob
changes only what the knob changes, and a temperature move costs no forward pass. :class:`KnobExplorer` puts
the knobs on ipywidgets sliders and redraws into an Output widget on every move.
"""

from __future__ import annotations

import base64
import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vclip.sampling import ClipPair, SamplingConfig, collate_pairs, sample_clip_pairs
from vclip.synthetic.measure import TruthPair, _majority, false_negative_share, group_shares, narrated_step

GROUP_KINDS = ("random", "retrieved")
GROUP_SIZES = (8, 16, 32, 64, 128)  # B: pairs per group (the teaching recipe: 64; the paper: 512 per GPU)
VIDEOS_PER_GROUP = (1, 2, 4, 8, 16, 32)  # V (the teaching recipe: 8; the paper: 32)
CANDIDATES = (8, 16, 32, 64, 128, 256)  # k (the paper and the teaching recipe: 64)
TEMPERATURE_EXPONENTS = (-2.0, 1.0)  # the temperature slider spans 10^-2 .. 10^1 (the paper: 1)
EMBED_CLIPS_PER_VIDEO = 4  # clips per video in the retrieval embedding pass (the teaching recipe's)


@dataclass
class KnobWorld:
    """A synthetic world's pre-training videos, loaded once for :func:`knob_view`, with a cache of clip pairs.

    Attributes:
        store: the pre-training store (features and tokenised captions).
        video_ids: the training videos (groups index into this list).
        truth: the folder's latent truth (:func:`vclip.synthetic.load_truth`).
        raw_captions: {video: {"start", "end"}} of ``raw_caption.json``, whose lines the truth labels.
        sampling: how clip pairs are drawn (the defaults: overlapped clips, as the paper).
    """

    store: object
    video_ids: list[str]
    truth: object
    raw_captions: dict
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    _pairs: dict = field(default_factory=dict, repr=False)  # (seed, video) -> ([ClipPair], [TruthPair], rng)
    # model -> {(seed, position): (video rows, text rows)}; a model's weights must not change between calls
    _embeddings: weakref.WeakKeyDictionary = field(default_factory=weakref.WeakKeyDictionary, repr=False)

    @classmethod
    def load(cls, data_dir: str | Path, sampling: SamplingConfig | None = None) -> KnobWorld:
        """Open a synthetic world (its root, or its ``pretrain`` folder) written by ``python -m vclip.synthetic``."""
        from vclip.data.formats import read_pretrain_folder
        from vclip.data.store import open_pretrain
        from vclip.data.truth import load_truth

        folder = Path(data_dir)
        if (folder / "pretrain").is_dir():
            folder = folder / "pretrain"
        truth = load_truth(folder)  # a clear error for a folder without the world's truth
        store, train_ids, _ = open_pretrain(folder)
        raw = {v: {"start": c.start, "end": c.end} for v, c in read_pretrain_folder(folder).captions.items()}
        return cls(store, list(train_ids), truth, raw, sampling or SamplingConfig())

    def clip_pairs(self, position: int, count: int, seed: int) -> tuple[list[ClipPair], list]:
        """The first ``count`` clip pairs of video ``video_ids[position]`` (a fixed stream per seed and video),
        each with its latent truth (:class:`vclip.synthetic.measure.TruthPair`, ``video`` = 0)."""
        video = self.video_ids[position]
        pairs, truths, rng = self._pairs.get((seed, video), ([], [], np.random.default_rng([seed, position])))
        if len(pairs) < count:
            feat_len = len(self.store.features(video))
            starts, ends, tokens = self.store.captions(video)
            seconds, raw = self.truth.seconds(video), self.raw_captions[video]
            for pair in sample_clip_pairs(feat_len, starts, ends, tokens, count - len(pairs), rng, self.sampling):
                step = narrated_step(raw["start"], raw["end"], self.truth.caption_steps[video],
                                  float(starts[pair.text_first]), float(ends[pair.text_last]))
                read_end = min(pair.video_end, pair.video_start + self.sampling.max_video_len)  # what the model reads
                pairs.append(pair)
                truths.append(TruthPair(0, step, seconds[pair.video_start:read_end]))
            self._pairs[(seed, video)] = (pairs, truths, rng)
        return pairs[:count], truths[:count]

    @torch.no_grad()
    def embeddings(self, model, positions: Sequence[int], count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(pooled video, pooled text), each (len(positions) * count, H): the first ``count`` pairs of each video
        in order, encoded by ``model`` in eval mode; pairs this model object encoded before are reused (so its
        weights must not change in between: :func:`knob_view` is for a model as it stands)."""
        cache = self._embeddings.setdefault(model, {})
        missing: dict[int, int] = {}
        for p in dict.fromkeys(positions):
            done = cache.get((seed, p))
            if done is None or len(done[0]) < count:
                missing[p] = 0 if done is None else len(done[0])
        if missing:
            feats, pairs = [], []
            for p, have in missing.items():
                pairs.append(self.clip_pairs(p, count, seed)[0][have:])
                feats.append(np.asarray(self.store.features(self.video_ids[p])))
            batch = collate_pairs(feats, pairs, self.sampling.max_video_len)
            was_training = model.training
            model.eval()
            try:
                out = model(batch.vfeats, batch.vmask, batch.input_ids, batch.attention_mask)
            finally:
                model.train(was_training)
            video, text = out.pooled_video.float(), out.pooled_text.float()
            row = 0
            for p, have in missing.items():
                new = count - have
                old = cache.get((seed, p))
                parts = (video[row:row + new], text[row:row + new])
                cache[(seed, p)] = parts if old is None else \
                    (torch.cat([old[0], parts[0]]), torch.cat([old[1], parts[1]]))
                row += new
        rows = [cache[(seed, p)] for p in positions]
        return torch.cat([v[:count] for v, _ in rows]), torch.cat([t[:count] for _, t in rows])


def world_vectors(world: KnobWorld, model, seed: int = 0, clips_per_video: int = EMBED_CLIPS_PER_VIDEO) -> np.ndarray:
    """(N, H) one vector per training video, as the retrieval pass computes it
    (:func:`vclip.retrieval.video_vectors`: the mean over aligned clips of (pooled video + pooled text) / 2)."""
    from vclip.retrieval import video_vectors

    return video_vectors(model, world.store, world.video_ids, clips_per_video, np.random.default_rng(seed),
                         world.sampling, progress=False)


def checked_vectors(world: KnobWorld, model, seed: int, vectors: np.ndarray | None = None) -> np.ndarray:
    """The training videos' retrieval vectors: ``vectors`` when given (one row per video, checked), else
    :func:`world_vectors` of ``model``."""
    if vectors is None:
        return world_vectors(world, model, seed)
    if len(vectors) != len(world.video_ids):
        raise ValueError(f"vectors has {len(vectors)} rows for the world's {len(world.video_ids)} training videos")
    return vectors


@dataclass
class GroupsView:
    """One kind of group ("random" or "retrieved") at one knob setting.

    Attributes:
        kind: "random" or "retrieved".
        groups: every group formed, as lists of indices into ``KnobWorld.video_ids``.
        losses: the contrastive loss of each measured group (the first ``num_groups``).
        false_negative_percents: per measured group, the percentage of its negatives that are false negatives.
        same_task_percent: the percentage of the video pairs of all ``groups`` that show the same task.
        similarity: (B, B) float32, the first group's logits: row i text i, column j video clip j, divided by
            the temperature (and L2-normalised first when ``normalize``).
        false_negative: (B, B) bool, the first group's false negatives: j != i and clip j in truth mostly shows
            the step text i speaks of.
        pair_video: (B,) int, the position in the first group of each pair's video.
        tasks: the task of each video of the first group.
        topped_up_groups: retrieved groups completed with random videos (fewer than V candidates: k < V).
    """

    kind: str
    groups: list[list[int]]
    losses: list[float]
    false_negative_percents: list[float]
    same_task_percent: float
    similarity: np.ndarray
    false_negative: np.ndarray
    pair_video: np.ndarray
    tasks: list[str]
    topped_up_groups: int = 0

    @property
    def loss(self) -> float:
        """The mean loss of the measured groups."""
        return float(np.mean(self.losses))

    @property
    def false_negative_percent(self) -> float:
        """The mean false-negative share (percent of negatives) of the measured groups."""
        return float(np.mean(self.false_negative_percents))


@dataclass
class KnobView:
    """Everything :func:`knob_view` computes for one knob setting: random beside retrieved groups."""

    temperature: float
    normalize: bool
    group_size: int  # B = videos_per_group * clips_per_video pairs
    videos_per_group: int
    clips_per_video: int
    num_candidates: int
    seed: int
    random: GroupsView
    retrieved: GroupsView

    @property
    def equal_logits_loss(self) -> float:
        """2 log B: the loss when every logit is equal (both directions)."""
        return 2 * math.log(self.group_size)

    def kinds(self) -> dict[str, GroupsView]:
        return {"random": self.random, "retrieved": self.retrieved}

    def lines(self) -> list[str]:
        """The numbers in words, rounded (loss to 0.1, shares to 0.1 percent)."""
        head = (f"tau {self.temperature:g}{', normalised' if self.normalize else ''}, B = {self.group_size} pairs = "
                f"{self.videos_per_group} videos x {self.clips_per_video} clips, k = {self.num_candidates} candidates "
                f"(2 log B = {self.equal_logits_loss:.1f})")
        rows = [head]
        for view in self.kinds().values():
            row = (f"{view.kind + ' groups:':<18} loss {view.loss:6.1f} | same task {view.same_task_percent:5.1f}% of "
                   f"video pairs | false negatives {view.false_negative_percent:5.1f}% of negatives "
                   f"({len(view.losses)} groups)")
            if view.topped_up_groups:
                row += f" | {view.topped_up_groups} groups topped up with random videos (k < V)"
            rows.append(row)
        return rows

    def figure(self):
        """:func:`knob_figure` of the first group of each kind."""
        kinds = self.kinds().values()
        titles = [f"{v.kind} group 0: loss {v.losses[0]:.1f}, {int(v.false_negative.sum())} false negatives"
                  for v in kinds]
        return knob_figure([v.similarity for v in kinds], [v.false_negative for v in kinds],
                           [v.pair_video for v in kinds], titles,
                           suptitle=f"tau {self.temperature:g}, B = {self.group_size} ({self.videos_per_group} videos "
                                    f"x {self.clips_per_video} clips), k = {self.num_candidates}")


def _check_knobs(world: KnobWorld, temperature: float, group_size: int, num_candidates: int, videos_per_group: int,
                 num_groups: int) -> int:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if videos_per_group < 1 or group_size < videos_per_group or group_size % videos_per_group:
        raise ValueError(f"group_size B must be a multiple of videos_per_group V (B = V x clips per video), got "
                         f"B = {group_size}, V = {videos_per_group}")
    if num_candidates < 1:
        raise ValueError(f"num_candidates must be >= 1, got {num_candidates}")
    groups = len(world.video_ids) // videos_per_group
    if num_groups < 1 or groups < num_groups:
        raise ValueError(f"{len(world.video_ids)} videos form {groups} groups of {videos_per_group}; "
                         f"num_groups must be in [1, {groups}], got {num_groups}")
    return group_size // videos_per_group


def knob_view(world: KnobWorld | str | Path, model, temperature: float = 1.0, group_size: int = 64, num_candidates: int = 64,
              videos_per_group: int = 8, seed: int = 0, normalize: bool = False, num_groups: int = 4,
              vectors: np.ndarray | None = None) -> KnobView:
    """Random and retrieved groups at one setting of the knobs, measured against the world's truth.

    Args:
        world: :meth:`KnobWorld.load` of a synthetic world (or its folder, loaded here).
        model: a :class:`vclip.model.VideoCLIP` (run in eval mode, without gradients; its mode is restored).
        temperature: tau, the logits are divided by it (the paper: 1).
        group_size: B, pairs per group; a multiple of ``videos_per_group`` (clips per video C = B / V).
        num_candidates: k, nearest neighbours searched per query video (exact L2 search).
        videos_per_group: V.
        seed: seeds the groups (random: ``default_rng([seed, 0])``; retrieved: ``default_rng([seed, 1])``)
            and each video's clip stream (``default_rng([seed, position])``).
        normalize: L2-normalise both embeddings before the dot product (CLIP's cosine; the paper: no).
        num_groups: groups of each kind whose loss and false negatives are measured (the first ones).
        vectors: (N, H) the model's video vectors (:func:`world_vectors`); computed when None.
    Returns:
        a :class:`KnobView`.
    """
    from vclip.loss import contrastive_loss
    from vclip.retrieval import random_groups, retrieval_groups

    if not isinstance(world, KnobWorld):
        world = KnobWorld.load(world)
    clips = _check_knobs(world, temperature, group_size, num_candidates, videos_per_group, num_groups)
    vectors = checked_vectors(world, model, seed, vectors)
    retrieved, stats = retrieval_groups(vectors, videos_per_group, np.random.default_rng([seed, 1]), num_candidates,
                                        index="flat")
    formed = {"random": random_groups(len(world.video_ids), videos_per_group, np.random.default_rng([seed, 0])),
              "retrieved": retrieved}
    views = {}
    for kind, groups in formed.items():
        losses, fn_percents, first = [], [], None
        for group in groups[:num_groups]:
            video, text = world.embeddings(model, group, clips, seed)
            loss = contrastive_loss(video, text, temperature, normalize)
            truths = [TruthPair(position, t.text_step, t.seconds)
                      for position, p in enumerate(group) for t in world.clip_pairs(p, clips, seed)[1]]
            losses.append(float(loss))
            fn_percents.append(false_negative_share(truths)["all"])
            if first is None:  # the group drawn in the figure
                if normalize:
                    video, text = F.normalize(video, dim=-1), F.normalize(text, dim=-1)
                logits = (text @ video.T / temperature).numpy()  # (B, B): row i text i, column j video clip j
                first = (logits, false_negative_mask(truths), np.repeat(np.arange(len(group)), clips),
                         [world.truth.video_tasks[world.video_ids[p]] for p in group])
        shares = group_shares(groups, world.video_ids, world.truth)
        views[kind] = GroupsView(kind, groups, losses, fn_percents, shares["same task"], *first,
                                 topped_up_groups=stats.topped_up_groups if kind == "retrieved" else 0)
    return KnobView(temperature, normalize, group_size, videos_per_group, clips, num_candidates, seed,
                    views["random"], views["retrieved"])


def false_negative_mask(pairs: Sequence[TruthPair]) -> np.ndarray:
    """(B, B) bool: negative (text i, video clip j != i) whose clip mostly shows text i's step, as
    :func:`vclip.synthetic.measure.false_negative_share` counts them (its "all" share is this mask's mean over
    the B (B - 1) negatives)."""
    text = np.array([p.text_step for p in pairs])
    clip = np.array([_majority(p.seconds) for p in pairs])
    false = (text[:, None] == clip[None, :]) & (text[:, None] >= 0)
    np.fill_diagonal(false, False)
    return false


def knob_figure(similarities: Sequence[np.ndarray], false_negatives: Sequence[np.ndarray],
                pair_videos: Sequence[np.ndarray], titles: Sequence[str], suptitle: str = ""):
    """Groups' similarity matrices side by side, false negatives marked, one video's clips boxed together.

    Args:
        similarities: per panel, (B, B) logits (row i text i, column j video clip j; positives on the diagonal).
        false_negatives: per panel, (B, B) bool: clip j in truth shows the step text i speaks of (j != i).
        pair_videos: per panel, (B,) the position of each pair's video in its group (white lines between videos).
        titles: per panel, its title.
    Returns:
        a Figure; the panels share one colour scale so their logits compare.
    """
    from vclip.viz import _as_2d, _plt

    if not len(similarities) == len(false_negatives) == len(pair_videos) == len(titles) >= 1:
        raise ValueError(f"knob_figure needs one similarity, false-negative mask, pair-video array and title per "
                         f"panel, got {len(similarities)}, {len(false_negatives)}, {len(pair_videos)}, {len(titles)}")
    sims = [_as_2d("similarity", s) for s in similarities]
    for s, fn, pv in zip(sims, false_negatives, pair_videos):
        if s.shape[0] != s.shape[1] or np.shape(fn) != s.shape or np.shape(pv) != (s.shape[0],):
            raise ValueError(f"a panel needs a square (B, B) similarity, a (B, B) mask and (B,) pair videos, got "
                             f"{s.shape}, {np.shape(fn)}, {np.shape(pv)}")
    plt = _plt()
    low, high = min(float(s.min()) for s in sims), max(float(s.max()) for s in sims)
    fig, axes = plt.subplots(1, len(sims), figsize=(3.6 * len(sims) + 0.8, 3.6), squeeze=False)
    for ax, s, fn, pv, title in zip(axes[0], sims, false_negatives, pair_videos, titles):
        image = ax.imshow(s, cmap="viridis", vmin=low, vmax=high, interpolation="nearest")
        for edge in np.flatnonzero(np.diff(np.asarray(pv))) + 0.5:
            ax.axhline(edge, color="white", lw=0.5)
            ax.axvline(edge, color="white", lw=0.5)
        rows, cols = np.nonzero(np.asarray(fn))
        ax.scatter(cols, rows, s=max(2.0, 400.0 / len(s)), marker="x", color="red", linewidths=0.8,
                   label="false negative (truth)")
        ax.plot([-0.5, len(s) - 0.5], [-0.5, len(s) - 0.5], color="white", lw=0.4, ls=":")
        ax.set(xlabel="video clip j (white lines: next video)", ylabel="text i")
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=6)
    axes[0][0].legend(fontsize=6, loc="upper right", framealpha=0.8)
    bar = fig.colorbar(image, ax=list(axes[0]), fraction=0.03, pad=0.02)
    bar.set_label("logit: text . clip / tau", fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    return fig


class KnobExplorer:
    """Sliders for the knobs of :func:`knob_view`; every move recomputes the view and redraws the Output widget.

    Args:
        world: a :class:`KnobWorld` or a synthetic world's folder.
        model: the model whose groups are shown (the untrained tiny model in chapter 03).
        seed: passed to :func:`knob_view`; the video vectors are computed once, with this seed.
        num_groups: groups of each kind measured per move.
        vectors: the model's video vectors when already computed (:func:`world_vectors`: the retrieval pass's,
            4 aligned clips per video, ``default_rng(seed)``); computed once otherwise.
        **initial: starting values of the knobs (``temperature``, ``normalize``, ``group_size``,
            ``num_candidates``, ``videos_per_group``); the defaults are the teaching recipe's.
    Use ``display(explorer.widget)``; ``explorer.update(group_size=16)`` moves a knob from code (its slider
    follows); ``explorer.view`` is the latest :class:`KnobView`. The Output widget holds the view's lines and
    figure as plain outputs, so a notebook executed without a live front-end keeps them in its widget state.
    """

    def __init__(self, world: KnobWorld | str | Path, model, seed: int = 0, num_groups: int = 2,
                 vectors: np.ndarray | None = None, **initial):
        import ipywidgets as widgets

        self.world = world if isinstance(world, KnobWorld) else KnobWorld.load(world)
        self.model, self.seed, self.num_groups = model, seed, num_groups
        self.vectors = world_vectors(self.world, model, seed) if vectors is None else np.asarray(vectors)
        self.values = {"temperature": 1.0, "normalize": False, "group_size": 64, "num_candidates": 64,
                       "videos_per_group": 8}
        unknown = sorted(set(initial) - set(self.values))
        if unknown:
            raise ValueError(f"KnobExplorer: unknown knobs {unknown}; the knobs are {sorted(self.values)}")
        style = {"description_width": "130px"}
        lo, hi = TEMPERATURE_EXPONENTS
        self.sliders = {
            "temperature": widgets.FloatLogSlider(value=1.0, base=10, min=lo, max=hi, step=0.25,
                                                  description="temperature tau", style=style),
            "normalize": widgets.Checkbox(value=False, description="L2-normalise (cosine)", indent=False),
            "group_size": widgets.SelectionSlider(options=GROUP_SIZES, value=64, description="group size B",
                                                  style=style),
            "num_candidates": widgets.SelectionSlider(options=CANDIDATES, value=64, description="candidates k",
                                                      style=style),
            "videos_per_group": widgets.SelectionSlider(options=VIDEOS_PER_GROUP, value=8,
                                                        description="videos per group V", style=style),
        }
        for slider in self.sliders.values():
            slider.continuous_update = False
        self.output = widgets.Output()
        names = list(self.sliders)
        self.widget = widgets.VBox([widgets.HBox([self.sliders[n] for n in names[:2]]),
                                    widgets.HBox([self.sliders[n] for n in names[2:]]), self.output])
        self._holding = False
        self.view: KnobView | None = None
        self.update(**initial)
        for name, slider in self.sliders.items():
            slider.observe(lambda change, name=name: self.update(**{name: change["new"]}), names="value")

    def update(self, **values) -> KnobView:
        """Set some knobs (the others keep their values), recompute the view, redraw; return the view.

        V above B is lowered to B (its slider follows), so every setting of the sliders is a valid group."""
        if self._holding:
            return self.view
        unknown = sorted(set(values) - set(self.values))
        if unknown:
            raise ValueError(f"KnobExplorer.update: unknown knobs {unknown}; the knobs are {sorted(self.values)}")
        self.values.update(values)
        if self.values["videos_per_group"] > self.values["group_size"]:
            self.values["videos_per_group"] = self.values["group_size"]
        self._holding = True  # moving the sliders to the values must not call update again
        try:
            for name, slider in self.sliders.items():
                if slider.value != self.values[name]:
                    slider.value = self.values[name]
        finally:
            self._holding = False
        self.view = knob_view(self.world, self.model, seed=self.seed, num_groups=self.num_groups,
                              vectors=self.vectors, **self.values)
        self._redraw()
        return self.view

    def _redraw(self) -> None:
        from vclip.viz import figure_png

        png = figure_png(self.view.figure())
        text = "\n".join(self.view.lines()) + "\n"
        self.output.outputs = (
            {"output_type": "stream", "name": "stdout", "text": text},
            {"output_type": "display_data", "metadata": {},
             "data": {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": "<knob figure>"}},
        )


__all__ = ["KnobExplorer", "KnobView", "KnobWorld", "GroupsView", "false_negative_mask", "knob_figure", "knob_view", "world_vectors"]
