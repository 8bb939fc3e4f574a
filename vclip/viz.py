"""Figures for the notebooks and the ipywidgets explorer: what VideoCLIP sees, learns and predicts.

Every figure takes plain NumPy arrays, so it serves the synthetic world, real features and a user's own
videos alike. The pictures follow the paper (Xu et al., EMNLP 2021):

* :func:`video_timeline` - a video's per-second S3D features (section 4.1; reference
  ``scripts/video_feature_extractor/``), its ASR captions, and sampled overlapped video/text clip pairs
  (section 3.3; reference ``processors/how2processor.py`` ``OverlappedAligner``);
* :func:`clip_alignment_figure` - overlapped against exactly aligned video clips of the same text clips,
  over the seconds that in truth show the step the text speaks of (section 3.3);
* :func:`retrieval_group_figure` - retrieval-augmented groups of similar videos (section 3.4; reference
  ``tasks/retritask.py``, ``modules/retri.py``);
* :func:`loss_curves` - the contrastive loss (section 3.2; reference ``losses/nce.py``) during training;
* :func:`similarity_heatmap` - text-video similarity matrices as used for zero-shot retrieval (section 5.1;
  reference ``evaluators/metric.py``);
* :func:`localisation_figure` - CrossTask step localisation, prediction against ground truth (section 5.3;
  reference ``evaluators/predictor.py`` ``CrossTaskPredictor``);
* :func:`segmentation_strips` - COIN per-second segmentation strips (section 5.4; ``COINZSPredictor``);
* :class:`Explorer` - type a query, see the ranked videos and where in each the matching seconds are, with
  scores calibrated against captions that mean nothing (:class:`NullScores`; the paper ranks raw dot products,
  section 5.1, which have no scale of their own).

Figures are a few inches wide, drawn at the resolution the caller sets (the notebooks: 120 dpi,
``vclip.notebooks.FIGURE_DPI``), so that executed notebooks stay well under a megabyte.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

BACKGROUND_COLOR = (0.92, 0.92, 0.92)
FIGURE_DPI = 120
"""The dpi of the figures drawn for chapters 06-07 and the explorer (readable at their shown size)."""


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _as_2d(name: str, array, ncols: int | None = None) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {array.shape}")
    if ncols is not None and array.shape[1] != ncols:
        raise ValueError(f"{name} must have {ncols} columns, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf ({int((~np.isfinite(array)).sum())} values)")
    return array


def pca_project(x: np.ndarray, n_components: int = 2) -> np.ndarray:
    """Project rows of ``x`` (N, D) onto their first principal components -> (N, n_components).

    Signs are fixed (largest-magnitude loading positive) so pictures do not flip between runs.
    """
    x = _as_2d("x", x).astype(np.float64)
    centered = x - x.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    vt = vt[:n_components]
    signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])
    signs[signs == 0] = 1
    out = centered @ (vt * signs[:, None]).T
    if out.shape[1] < n_components:  # fewer samples or dims than components
        out = np.pad(out, ((0, 0), (0, n_components - out.shape[1])))
    return out


def feature_colors(features: np.ndarray) -> np.ndarray:
    """One RGB colour per second from the first three principal components of features (T, D) -> (T, 3).

    Seconds showing the same thing get similar colours, so a video's steps appear as coloured blocks.
    """
    proj = pca_project(features, 3)
    lo, hi = proj.min(axis=0, keepdims=True), proj.max(axis=0, keepdims=True)
    return (proj - lo) / np.where(hi - lo > 0, hi - lo, 1.0)


# ----------------------------------------------------------------------------------------------------
# 01: a video's timeline, its captions and overlapped clip pairs


def video_timeline(features: np.ndarray | None, starts: Sequence[float], ends: Sequence[float],
                   texts: Sequence[str], clip_pairs: Sequence[tuple[tuple[float, float], tuple[int, int]]] = (),
                   title: str = "", max_chars: int = 40, caption_rows: int = 3, seconds: float | None = None):
    """A video's timeline: features per second, ASR captions, and sampled (text span, video span) pairs.

    Args:
        features: (T, D) per-second features, drawn as one PCA colour per second; None to omit the strip.
        starts, ends, texts: the captions (seconds and text), as in ``raw_caption.json``.
        clip_pairs: ``((text_start, text_end), (video_start, video_end))`` per sampled pair, video span
            in whole seconds [start, end) as the overlapped sampler returns it.
        seconds: the video length (defaults to T, or to the last caption end).
    Returns:
        a matplotlib Figure.
    """
    if not (len(starts) == len(ends) == len(texts)):
        raise ValueError(f"starts, ends and texts must have equal lengths, got {len(starts)}, {len(ends)}, "
                         f"{len(texts)}")
    bad = [i for i, (s, e) in enumerate(zip(starts, ends)) if not e >= s]
    if bad:
        raise ValueError(f"captions {bad[:5]} have end < start (e.g. start={starts[bad[0]]}, end={ends[bad[0]]})")
    plt = _plt()
    if seconds is None:
        seconds = features.shape[0] if features is not None else (max(ends) if len(ends) else 1.0)
    rows = [0.5] if features is not None else []
    rows += [0.32 * caption_rows + 0.2]
    if clip_pairs:
        rows += [0.22 * len(clip_pairs) + 0.3]
    fig, axes = plt.subplots(len(rows), 1, figsize=(8.0, 0.9 + 0.9 * sum(rows)), sharex=True,
                             gridspec_kw={"height_ratios": rows})
    axes = list(np.atleast_1d(axes))
    ax_iter = iter(axes)
    if features is not None:
        ax = next(ax_iter)
        feats = _as_2d("features", features)
        ax.imshow(feature_colors(feats)[None], aspect="auto", extent=(0, feats.shape[0], 0, 1),
                  interpolation="nearest")
        ax.set_yticks([])
        ax.set_ylabel("S3D\n(PCA)", rotation=0, ha="right", va="center")
    ax = next(ax_iter)
    chars_per_second = 0.8 * 8.0 * 72 / 4.6 / max(seconds, 1e-6)  # ~4.6 px per 7-pt character
    for i, (s, e, t) in enumerate(zip(starts, ends, texts)):
        row = i % caption_rows
        ax.barh(row, max(e - s, 0.2), left=s, height=0.8, color="tab:blue", alpha=0.25, edgecolor="tab:blue")
        room = (starts[i + caption_rows] if i + caption_rows < len(starts) else seconds) - s
        fit = min(max_chars, int(room * chars_per_second) - 1)
        if fit >= 3:  # only label captions with room for a word
            label = t if len(t) <= fit else t[: fit - 1] + "…"
            ax.text(s + 0.1, row, label, va="center", ha="left", fontsize=7, clip_on=True)
    ax.set_ylim(caption_rows - 0.5, -0.5)
    ax.set_yticks([])
    ax.set_ylabel("ASR\ncaptions", rotation=0, ha="right", va="center")
    if clip_pairs:
        ax = next(ax_iter)
        for k, ((ts, te), (vs, ve)) in enumerate(clip_pairs):
            ax.barh(k - 0.17, te - ts, left=ts, height=0.32, color="tab:blue", label="text clip" if k == 0 else None)
            ax.barh(k + 0.17, ve - vs, left=vs, height=0.32, color="tab:orange",
                    label="video clip" if k == 0 else None)
        ax.set_ylim(len(clip_pairs) - 0.5, -0.5)
        ax.set_yticks(range(len(clip_pairs)))
        ax.set_yticklabels([f"pair {k}" for k in range(len(clip_pairs))], fontsize=7)
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=7, ncol=2, frameon=False, borderaxespad=0.1)
    axes[-1].set_xlim(0, seconds)
    axes[-1].set_xlabel("seconds")
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    return fig


def similarity_with_truth(cosine: np.ndarray, step_of_second: Sequence[int], step_names: Sequence[str] = (),
                          title: str = ""):
    """A video's second-by-second cosine matrix with the world's truth drawn along both axes.

    Args:
        cosine: (T, T) similarity of every second with every other.
        step_of_second: (T,) the latent step each second shows (-1 background, drawn grey).
        step_names: names of the latent steps, for the legend of the strip.
    Returns:
        a matplotlib Figure: the matrix, a truth strip under it and one beside it, so a bright block can be
        read as one step, two related steps, or background.
    """
    cosine = _as_2d("cosine", cosine)
    steps = np.asarray(step_of_second)
    if cosine.shape[0] != cosine.shape[1] or steps.shape != (cosine.shape[0],):
        raise ValueError(f"cosine must be (T, T) and step_of_second (T,), got {cosine.shape} and {steps.shape}")
    plt = _plt()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    present = [int(s) for s in np.unique(steps) if s >= 0]
    palette = plt.get_cmap("tab10")
    colours = [(0.8, 0.8, 0.8)] + [palette(k % 10) for k in range(len(present))]
    index = np.array([0 if s < 0 else present.index(int(s)) + 1 for s in steps])
    fig = plt.figure(figsize=(6.4, 5.2))
    grid = fig.add_gridspec(2, 3, width_ratios=[0.05, 1, 0.05], height_ratios=[1, 0.05], wspace=0.04, hspace=0.04)
    ax = fig.add_subplot(grid[0, 1])
    image = ax.imshow(cosine, cmap="viridis", interpolation="nearest", aspect="auto")
    ax.set(ylabel="", title=title)
    ax.tick_params(labelbottom=False, labelleft=False)
    strip_cmap = ListedColormap(colours)
    side, bottom = fig.add_subplot(grid[0, 0], sharey=ax), fig.add_subplot(grid[1, 1], sharex=ax)
    side.imshow(index[:, None], cmap=strip_cmap, vmin=0, vmax=len(colours) - 1, aspect="auto", interpolation="nearest")
    bottom.imshow(index[None, :], cmap=strip_cmap, vmin=0, vmax=len(colours) - 1, aspect="auto",
                  interpolation="nearest")
    side.set(xticks=[], ylabel="second (truth strip: the step shown)")
    bottom.set(yticks=[], xlabel="second")
    fig.colorbar(image, cax=fig.add_subplot(grid[0, 2]), label="cosine similarity of the two seconds")
    names = ["background"] + [step_names[s] if s < len(step_names) else f"step {s}" for s in present]
    fig.legend(handles=[Patch(color=c, label=n) for c, n in zip(colours, names)], loc="lower center",
               ncol=min(len(names), 3), fontsize=7, frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.subplots_adjust(bottom=0.16)
    return fig


def clip_alignment_figure(step_of_second: Sequence[int], pairs: Sequence[Mapping], step_names: Sequence[str] = (),
                          max_video_len: int = 32, seconds: float | None = None, title: str = ""):
    """Overlapped against exactly aligned video clips of the same text clips, over the world's truth.

    Args:
        step_of_second: (T,) the latent step each second shows (-1 background), e.g. ``SyntheticTruth.seconds``.
        pairs: one mapping per text clip: ``text`` (start, end) seconds, ``step`` (the step its words speak
            of, -1 none), ``overlap`` and ``exact`` video spans [start, end) in whole seconds.
        step_names: names of the latent steps, for the row labels.
        max_video_len: seconds the video tower reads; an exact clip's seconds beyond them are drawn hatched.
        seconds: the x range (default: the video's length).
    Returns:
        a matplotlib Figure: per text clip three bars (text, overlapped, exact) over a green band marking the
        seconds that show the step the text speaks of.
    """
    from matplotlib.patches import Patch, Rectangle

    truth = np.asarray(step_of_second)
    if truth.ndim != 1 or len(truth) == 0:
        raise ValueError(f"step_of_second must be a non-empty 1-D array, got shape {truth.shape}")
    if not pairs:
        raise ValueError("clip_alignment_figure needs at least one text clip")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.4, 0.9 + 0.62 * len(pairs) * 1.5))
    labels = []
    for k, pair in enumerate(pairs):
        y = 3.6 * k
        for start, end in _runs(np.flatnonzero(truth == pair["step"])) if pair["step"] >= 0 else []:
            ax.add_patch(Rectangle((start, y - 0.5), end - start, 3.0, facecolor=(0.75, 0.9, 0.72), zorder=0))
        (ts, te), (os_, oe), (es, ee) = pair["text"], pair["overlap"], pair["exact"]
        ax.barh(y, te - ts, left=ts, height=0.8, color="tab:blue")
        ax.barh(y + 1, oe - os_, left=os_, height=0.8, color="tab:orange")
        read = min(ee, es + max_video_len)
        ax.barh(y + 2, read - es, left=es, height=0.8, color="tab:gray")
        if ee > read:
            ax.barh(y + 2, ee - read, left=read, height=0.8, color="white", edgecolor="tab:gray", hatch="///")
        name = step_names[pair["step"]] if 0 <= pair["step"] < len(step_names) else ("no step" if pair["step"] < 0
                                                                                    else f"step {pair['step']}")
        labels += [f"text {k}: \u201c{name}\u201d", "overlapped video", "exact video"]
    ax.set_yticks([3.6 * k + j for k in range(len(pairs)) for j in range(3)], labels, fontsize=8)
    ax.set_ylim(3.6 * len(pairs) - 1.1, -0.6)
    ax.set_xlim(0, seconds if seconds is not None else len(truth))
    ax.set_xlabel("seconds")
    ax.legend(handles=[Patch(color=(0.75, 0.9, 0.72), label="seconds showing the step the text speaks of"),
                       Patch(facecolor="white", edgecolor="tab:gray", hatch="///",
                             label=f"exact clip beyond the {max_video_len} s the model reads")],
              loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=7, ncol=2, frameon=False, borderaxespad=0.1)
    if title:
        ax.set_title(title, loc="left", pad=18)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------------
# 03-04: retrieval-augmented groups and loss curves


def retrieval_group_figure(vectors: np.ndarray, labels: Sequence, groups: Sequence[Sequence[int]],
                           label_names: Mapping | None = None, title: str = "retrieval-augmented groups"):
    """Video vectors in 2-D (PCA) coloured by how-to task, with groups drawn, and group purity.

    Args:
        vectors: (N, H) one vector per video (``vclip.retrieval.video_vectors``).
        labels: (N,) each video's task (int or str) from the world's ground truth.
        groups: lists of video indices; the first of each is drawn as the query (a star).
        label_names: optional mapping label -> name for the legend.
    Returns:
        a Figure with the scatter (left) and, per group, the fraction of members sharing the query's task
        against what random groups would give (right).
    """
    vectors = _as_2d("vectors", vectors)
    labels = np.asarray(labels)
    if labels.shape != (vectors.shape[0],):
        raise ValueError(f"labels must have shape ({vectors.shape[0]},), got {labels.shape}")
    for g, group in enumerate(groups):
        if len(group) == 0 or min(group) < 0 or max(group) >= len(vectors):
            raise ValueError(f"group {g} has indices outside [0, {len(vectors)}): {list(group)[:8]}")
    plt = _plt()
    xy = pca_project(vectors, 2)
    uniq = list(dict.fromkeys(labels.tolist()))
    cmap = plt.get_cmap("tab20", max(len(uniq), 1))
    color_of = {u: cmap(i % 20) for i, u in enumerate(uniq)}
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(8.0, 3.2), gridspec_kw={"width_ratios": [1.6, 1]})
    ax.scatter(xy[:, 0], xy[:, 1], s=8, c=[color_of[v] for v in labels.tolist()], alpha=0.45, linewidths=0)
    edge = plt.get_cmap("Dark2")
    for g, group in enumerate(groups[:3]):
        group = list(group)
        ax.scatter(xy[group, 0], xy[group, 1], s=22, facecolors="none", edgecolors=[edge(g)], linewidths=1.0,
                   label=f"group {g}")
        ax.scatter(xy[group[0], 0], xy[group[0], 1], s=120, marker="*", color=edge(g), edgecolors="k",
                   linewidths=0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="best")
    counts = {u: float((labels == u).mean()) for u in uniq}
    purity = [float((labels[list(g)] == labels[g[0]]).mean()) for g in groups]
    chance = [counts[labels[g[0]].item() if hasattr(labels[g[0]], "item") else labels[g[0]]] for g in groups]
    idx = np.arange(len(groups))
    ax2.bar(idx - 0.2, purity, width=0.4, label="retrieved group")
    ax2.bar(idx + 0.2, chance, width=0.4, label="random group (expected)", color="grey")
    ax2.set_ylim(0, 1)
    ax2.set_xticks(idx)
    ax2.set_xlabel("group")
    ax2.set_ylabel("same task as query")
    ax2.legend(fontsize=7)
    if label_names is not None and len(uniq) <= 12:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], marker="o", ls="", color=color_of[u], label=str(label_names.get(u, u)))
                   for u in uniq]
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=6, frameon=False)
        fig.subplots_adjust(bottom=0.25)
    fig.tight_layout()
    return fig


def loss_curves(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], chance: float | None = None,
                ylabel: str = "contrastive loss", title: str = "", smooth: int = 1):
    """Loss against step for one or more runs.

    Args:
        curves: name -> (steps, values).
        chance: optional level to draw (e.g. ``2 * log(B)``, the loss when all logits are equal).
        smooth: moving-average window (1 = raw values).
    """
    if not curves:
        raise ValueError("loss_curves needs at least one curve")
    if smooth < 1:
        raise ValueError(f"smooth must be >= 1, got {smooth}")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 2.8))
    for name, (steps, values) in curves.items():
        steps, values = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
        if steps.shape != values.shape or steps.ndim != 1 or len(steps) == 0:
            raise ValueError(f"curve {name!r}: steps and values must be equal-length 1-D, got {steps.shape} "
                             f"and {values.shape}")
        if smooth > 1 and len(values) >= smooth:
            kernel = np.ones(smooth) / smooth
            values = np.convolve(values, kernel, mode="valid")
            steps = steps[smooth - 1:]
        ax.plot(steps, values, label=name, lw=1.2)
    if chance is not None:
        ax.axhline(chance, color="grey", ls="--", lw=1, label=f"equal logits ({chance:.2f})")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------------
# 04/05: similarity matrices, CrossTask localisation, COIN strips


def similarity_heatmap(sim: np.ndarray, row_labels: Sequence[str] | None = None,
                       col_labels: Sequence[str] | None = None, title: str = "text-video similarity",
                       mark_argmax: bool = True, ax=None, colorbar_label: str = "similarity (dot product)",
                       xlabel: str = "videos", ylabel: str = "texts"):
    """A (queries x candidates) similarity matrix; the positives are on the diagonal.

    Row maxima are marked with a dot (green on the diagonal = a correct top-1, red otherwise); the colour
    bar says what the colour means (``colorbar_label``).
    """
    sim = _as_2d("sim", sim)
    if row_labels is not None and len(row_labels) != sim.shape[0]:
        raise ValueError(f"row_labels has {len(row_labels)} entries for {sim.shape[0]} rows")
    if col_labels is not None and len(col_labels) != sim.shape[1]:
        raise ValueError(f"col_labels has {len(col_labels)} entries for {sim.shape[1]} columns")
    plt = _plt()
    fig = None
    if ax is None:
        side = min(6.0, 2.0 + 0.18 * max(sim.shape))
        fig, ax = plt.subplots(figsize=(side + 1.0, side))
    im = ax.imshow(sim, cmap="viridis", aspect="auto", interpolation="nearest")
    bar = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    bar.set_label(colorbar_label, fontsize=7)
    if mark_argmax:
        best = sim.argmax(axis=1)
        rows = np.arange(sim.shape[0])
        ok = best == rows
        ax.scatter(best[ok], rows[ok], s=10, c="lime", marker="o", label="top-1 correct")
        ax.scatter(best[~ok], rows[~ok], s=10, c="red", marker="o", label="top-1 wrong")
        ax.legend(fontsize=6, loc="upper right", framealpha=0.8)
    for labels, setter, ticks in ((row_labels, ax.set_yticklabels, ax.set_yticks),
                                  (col_labels, ax.set_xticklabels, ax.set_xticks)):
        if labels is not None:
            ticks(range(len(labels)))
            setter([lb if len(lb) <= 24 else lb[:23] + "…" for lb in labels], fontsize=6)
    if col_labels is not None:
        plt.setp(ax.get_xticklabels(), rotation=60, ha="right")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    if fig is not None:
        fig.tight_layout()
    return fig if fig is not None else ax.figure


def localisation_figure(scores: np.ndarray, predicted: Sequence[int], ground_truth: np.ndarray,
                        step_names: Sequence[str] | None = None, title: str = "CrossTask step localisation",
                        colorbar_label: str = "log-softmax over steps"):
    """Per-second step scores with the ground-truth step segments and the one predicted second per step.

    Args:
        scores: (T, K) per-second scores of each of the task's K steps (e.g. log-softmax over steps).
        predicted: (K,) the second chosen for each step by the order-constrained dynamic program.
        ground_truth: (T, K) bool, True where step k happens at second t.
        step_names: K names for the y-axis.
    Returns:
        a Figure; a step counts as recalled when its predicted second falls inside its ground truth.
    """
    scores = _as_2d("scores", scores)
    t_len, k = scores.shape
    ground_truth = np.asarray(ground_truth, dtype=bool)
    if ground_truth.shape != (t_len, k):
        raise ValueError(f"ground_truth must have shape {(t_len, k)} like scores, got {ground_truth.shape}")
    predicted = np.asarray(predicted, dtype=int)
    if predicted.shape != (k,) or (predicted < 0).any() or (predicted >= t_len).any():
        raise ValueError(f"predicted must hold one second in [0, {t_len}) per step ({k}), got {predicted.tolist()}")
    if step_names is not None and len(step_names) != k:
        raise ValueError(f"step_names has {len(step_names)} names for {k} steps")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8.0, 1.2 + 0.3 * k), dpi=FIGURE_DPI)
    image = ax.imshow(scores.T, aspect="auto", cmap="Greys", interpolation="nearest",
                      extent=(0, t_len, k - 0.5, -0.5))
    bar = fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    bar.set_label(colorbar_label, fontsize=7)
    for step in range(k):
        on = np.flatnonzero(ground_truth[:, step])
        for start, end in _runs(on):
            ax.add_patch(_rect(start, step - 0.42, end - start, 0.84, "tab:green"))
        hit = ground_truth[predicted[step], step]
        ax.plot(predicted[step] + 0.5, step, marker="v", ms=7, color="tab:blue" if hit else "tab:red", ls="")
    ax.set_yticks(range(k))
    ax.set_yticklabels(step_names if step_names is not None else [f"step {i}" for i in range(k)], fontsize=7)
    ax.set_xlabel("seconds  (green boxes: annotated segment of the step; ▼ the second the DP picked: blue inside, red outside)",
                  fontsize=7)
    present = [s for s in range(k) if ground_truth[:, s].any()]
    found = sum(bool(ground_truth[predicted[s], s]) for s in present)
    ax.set_title(f"{title}: {found} of {len(present)} annotated steps found", fontsize=9)
    fig.tight_layout()
    return fig


def _runs(indices: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous runs [start, end) of sorted integer indices."""
    runs: list[tuple[int, int]] = []
    for i in np.asarray(indices, dtype=int).tolist():
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


def _rect(x, y, w, h, color):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, fill=False, edgecolor=color, linewidth=1.5)


def segmentation_strips(strips: Mapping[str, Sequence[int]], label_names: Mapping[int, str] | None = None,
                        background: int = 0, title: str = "COIN-style segmentation"):
    """Per-second label strips (e.g. ground truth, prediction), one row each, background in light grey.

    Args:
        strips: name -> (T,) integer labels, all of the same length.
        label_names: optional label -> name for the legend.
        background: the background label.
    """
    if not strips:
        raise ValueError("segmentation_strips needs at least one strip")
    arrays = {name: np.asarray(v, dtype=int) for name, v in strips.items()}
    lengths = {name: a.shape for name, a in arrays.items()}
    if len({s for s in lengths.values()}) != 1 or next(iter(lengths.values()))[0:1] == (0,) \
            or len(next(iter(lengths.values()))) != 1:
        raise ValueError(f"strips must be non-empty 1-D arrays of equal length, got shapes {lengths}")
    plt = _plt()
    from matplotlib.colors import ListedColormap

    labels = sorted({int(x) for a in arrays.values() for x in a.tolist()} - {background})
    palette = plt.get_cmap("tab20", 20)
    index_of = {lab: i + 1 for i, lab in enumerate(labels)}
    colors = [BACKGROUND_COLOR] + [palette(i % 20) for i in range(len(labels))]
    image = np.stack([[index_of.get(int(x), 0) for x in a] for a in arrays.values()])
    fig, ax = plt.subplots(figsize=(8.0, 0.9 + 0.35 * len(arrays)), dpi=FIGURE_DPI)
    ax.imshow(image, aspect="auto", interpolation="nearest", cmap=ListedColormap(colors),
              vmin=0, vmax=len(colors) - 1)
    ax.set_yticks(range(len(arrays)))
    ax.set_yticklabels(list(arrays), fontsize=8)
    ax.set_xlabel("seconds")
    ax.set_title(title, fontsize=9)
    if label_names is not None and len(labels) <= 10:
        from matplotlib.patches import Patch

        handles = [Patch(color=BACKGROUND_COLOR, label="background")]
        handles += [Patch(color=colors[index_of[lab]], label=str(label_names.get(lab, lab))[:28]) for lab in labels]
        ax.legend(handles=handles, fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------------
# 05: the explorer - type a query, see ranked videos and the matching seconds


@dataclass
class RankedVideo:
    """One search hit: a video, its score against the query, and the query's score at every second.

    ``z`` and ``per_second_z`` are the same scores calibrated (:class:`NullScores`): ``z``, how many standard
    deviations the query scores above captions that mean nothing on this video; ``per_second_z``, how far
    above other real captions it scores at each second (NaN / None without a baseline).
    """

    video_id: str
    score: float
    per_second: np.ndarray  # (T,) score of the query against each second's video token state
    captions: list[tuple[float, float, str]] = field(default_factory=list)  # the query's own step, for display
    z: float = float("nan")
    per_second_z: np.ndarray | None = None


STANDS_OUT = 2.0
"""A second "stands out" when the query beats other captions there by this many standard deviations."""


def nonsense_captions(n: int = 128, words: int = 3, seed: int = 0) -> list[str]:
    """``n`` captions of ``words`` random English words from the BERT vocabulary: text that describes no video.

    They are the baseline of :class:`NullScores`: what a video scores against a query that means nothing.
    """
    from vclip.tokenizer import load_tokenizer

    vocabulary = sorted(w for w in load_tokenizer().vocab if w.isalpha() and w.isascii() and len(w) > 2)
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(vocabulary, words)) for _ in range(n)]


@dataclass
class NullScores:
    """Baselines that give a raw score a scale: z = (score - mean) / std against texts of known meaning.

    Raw dot products carry a large offset shared by every text (a video can score 6 against anything), so a
    raw score alone does not say whether a query matched. Two questions, two baselines:

    * does the query mean anything to this video? Each video's pooled score against M captions of random
      words (:func:`nonsense_captions`) gives a mean and a standard deviation per video;
    * which seconds show it? Each second's score against the nonsense captions and against M' *real*
      captions (other steps' sentences) gives two means and standard deviations per second; a second's z is
      the smaller of its two margins, so it stands out only where the query beats both nonsense and what a
      typical sentence scores there (a cooking sentence beats nonsense on every cooking second).
    """

    video_mean: np.ndarray  # (N,)
    video_std: np.ndarray  # (N,)
    second_mean: list[np.ndarray]  # N arrays (T_i,): against the nonsense captions
    second_std: list[np.ndarray]  # N arrays (T_i,)
    caption_mean: list[np.ndarray]  # N arrays (T_i,): against the real captions
    caption_std: list[np.ndarray]  # N arrays (T_i,)

    def second_z(self, i: int, per_second: np.ndarray) -> np.ndarray:
        """(T_i,) the smaller of the query's two margins at each second of video i (in standard deviations)."""
        return np.minimum((per_second - self.second_mean[i]) / self.second_std[i],
                          (per_second - self.caption_mean[i]) / self.caption_std[i])

    @classmethod
    def from_vectors(cls, null_texts: np.ndarray, video_vectors: np.ndarray,
                     per_second_states: Sequence[np.ndarray], second_texts: np.ndarray | None = None) -> NullScores:
        """From (M, H) nonsense-caption vectors, (N, H) pooled videos, N (T_i, H) per-second states and
        (M', H) real-caption vectors for the seconds (default: the nonsense ones)."""
        null_texts = _as_2d("null_texts", null_texts).astype(np.float64)
        second_texts = null_texts if second_texts is None else _as_2d("second_texts", second_texts).astype(np.float64)
        if min(null_texts.shape[0], second_texts.shape[0]) < 2:
            raise ValueError(f"a baseline needs at least 2 captions, got {null_texts.shape[0]} and "
                             f"{second_texts.shape[0]}")
        pooled = null_texts @ np.asarray(video_vectors, dtype=np.float64).T  # (M, N)
        states = [np.asarray(s, dtype=np.float64) for s in per_second_states]
        nonsense = [null_texts @ s.T for s in states]  # (M, T_i)
        captions = [second_texts @ s.T for s in states]  # (M', T_i)
        floor = 1e-6
        return cls(pooled.mean(axis=0), np.maximum(pooled.std(axis=0), floor),
                   [s.mean(axis=0) for s in nonsense], [np.maximum(s.std(axis=0), floor) for s in nonsense],
                   [s.mean(axis=0) for s in captions], [np.maximum(s.std(axis=0), floor) for s in captions])


def matching_seconds(per_second_z: np.ndarray, threshold: float = STANDS_OUT) -> list[tuple[int, int]]:
    """Runs [start, end) of the seconds whose calibrated score is at least ``threshold`` (none may stand out)."""
    per_second_z = np.asarray(per_second_z, dtype=float)
    if per_second_z.ndim != 1 or len(per_second_z) == 0:
        raise ValueError(f"per_second_z must be a non-empty 1-D array, got shape {per_second_z.shape}")
    return _runs(np.flatnonzero(per_second_z >= threshold))


def shading_against_truth(hit: RankedVideo, threshold: float = STANDS_OUT) -> tuple[float, float]:
    """How well the shaded seconds of a hit find the query's own annotated step, as two shares:
    (share of the step's seconds that stand out, share of the standing-out seconds that are the step's).

    The first is a recall, the second a precision; NaN where there is nothing to count (no annotated step,
    or no second stands out). ``hit.captions`` holds the step's [start, end) seconds."""
    if hit.per_second_z is None:
        raise ValueError(f"{hit.video_id}: the hit has no calibrated per-second scores (search with a baseline)")
    shaded = np.asarray(hit.per_second_z, dtype=float) >= threshold
    step = np.zeros_like(shaded)
    for start, end, _ in hit.captions:
        step[int(np.floor(start)):int(np.ceil(end))] = True
    recall = float(shaded[step].mean()) if step.any() else float("nan")
    precision = float(step[shaded].mean()) if shaded.any() else float("nan")
    return recall, precision


def rank_videos(text_vector: np.ndarray, video_vectors: np.ndarray, per_second_states: Sequence[np.ndarray],
                video_ids: Sequence[str], k: int = 5, null: NullScores | None = None) -> list[RankedVideo]:
    """Rank videos by dot product with a text vector (the paper's raw similarity) and score each second.

    Args:
        text_vector: (H,) pooled text embedding of the query.
        video_vectors: (N, H) pooled video embeddings.
        per_second_states: N arrays (T_i, H) of per-second video token states.
        video_ids: N ids.
        k: how many to return. Ties are broken by video order (stable).
        null: optional baseline; fills each hit's ``z`` and ``per_second_z``.
    """
    text_vector = np.asarray(text_vector, dtype=np.float64)
    video_vectors = _as_2d("video_vectors", video_vectors, ncols=text_vector.shape[0] if text_vector.ndim else None)
    n = video_vectors.shape[0]
    if len(per_second_states) != n or len(video_ids) != n:
        raise ValueError(f"got {n} video vectors, {len(per_second_states)} per-second arrays, {len(video_ids)} ids")
    if null is not None and len(null.video_mean) != n:
        raise ValueError(f"the baseline covers {len(null.video_mean)} videos, the search {n}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    scores = video_vectors @ text_vector
    hits = []
    for i in np.argsort(-scores, kind="stable")[:k]:
        per_second = np.asarray(per_second_states[i]) @ text_vector
        hit = RankedVideo(str(video_ids[i]), float(scores[i]), per_second)
        if null is not None:
            hit.z = float((scores[i] - null.video_mean[i]) / null.video_std[i])
            hit.per_second_z = null.second_z(i, per_second)
        hits.append(hit)
    return hits


_STOP_WORDS = frozenset("a an the to of and in on with for it its into some".split())


def query_captions(query: str, captions: Sequence[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """The annotations that describe the query's own step: those holding every content word of the query."""
    words = {w for w in query.lower().split() if w not in _STOP_WORDS}
    if not words:
        return []
    return [c for c in captions if words <= set(c[2].lower().split())]


def ranked_videos_figure(ranked: Sequence[RankedVideo], query: str = "", threshold: float = STANDS_OUT):
    """One row per ranked video: the query's calibrated score at every second, seconds that stand out shaded.

    Without a baseline (``per_second_z`` None) the raw per-second score is drawn and nothing is shaded. The
    query's own step, where the video's annotations name it, is drawn in green along the bottom.
    """
    if not ranked:
        raise ValueError("ranked_videos_figure needs at least one ranked video")
    plt = _plt()
    fig, axes = plt.subplots(len(ranked), 1, figsize=(8.0, 0.8 + 0.9 * len(ranked)), squeeze=False,
                             sharey=all(h.per_second_z is not None for h in ranked), dpi=FIGURE_DPI)
    longest = max(max(len(hit.per_second) for hit in ranked), 1)  # one time axis for every row
    calibrated = ranked[0].per_second_z is not None
    for rank, (ax, hit) in enumerate(zip(axes[:, 0], ranked), start=1):
        curve = hit.per_second_z if hit.per_second_z is not None else hit.per_second
        t = np.arange(len(curve))
        ax.plot(t + 0.5, curve, color="tab:blue", lw=1)
        if hit.per_second_z is not None:
            ax.axhline(threshold, color="tab:orange", lw=0.8, ls="--")
            for start, end in matching_seconds(hit.per_second_z, threshold):
                ax.axvspan(start, end, color="tab:orange", alpha=0.35, lw=0)
        for s, e, _text in hit.captions:
            ax.axvspan(s, e, ymin=0, ymax=0.1, color="tab:green", alpha=0.8, lw=0)
        ax.set_xlim(0, longest)
        ax.tick_params(labelsize=7)
        z = f", z {hit.z:.1f}" if np.isfinite(hit.z) else ""
        ax.text(1.01, 0.5, f"#{rank} {hit.video_id}\nscore {hit.score:.1f}{z}", transform=ax.transAxes, fontsize=7,
                va="center")
        if rank < len(ranked):
            ax.set_xticklabels([])
    axes[-1, 0].set_xlabel("seconds  (orange: seconds that stand out; green: the query's own annotated step)",
                           fontsize=8)
    if calibrated:  # one scale for every figure, so a weak query looks weak beside a strong one
        top = max(2.5 * threshold, max(float(h.per_second_z.max()) for h in ranked if h.per_second_z is not None))
        bottom = min(-1.0, min(float(h.per_second_z.min()) for h in ranked if h.per_second_z is not None))
        axes[0, 0].set_ylim(bottom - 0.3, top + 0.3)
        fig.text(0.01, 0.5, "z of each second (the smaller margin)", rotation=90, va="center", fontsize=8)
    if query:
        best = ranked[0]
        finding = (f"best video {best.z:.1f} sd above nonsense" if np.isfinite(best.z) else f"best score {best.score:.1f}")
        axes[0, 0].set_title(f"query {query!r}: {finding}", fontsize=9)
    fig.tight_layout(rect=(0.03, 0, 1, 1))
    return fig


class Explorer:
    """An ipywidgets explorer: type a query, press Enter or Search, see ranked videos and matching seconds.

    Args:
        search: ``search(query, k) -> list[RankedVideo]`` (e.g. :func:`vclip.viz.model_search`).
        initial_query: shown and searched at start when non-empty.
        k: how many videos to show (a slider from 1 to ``max_k``; moving it searches again).
    Use ``display(explorer.widget)`` in a notebook; ``explorer.run(query)`` searches programmatically.
    """

    def __init__(self, search: Callable[[str, int], list[RankedVideo]], initial_query: str = "", k: int = 5,
                 max_k: int = 10):
        import ipywidgets as widgets

        if not 1 <= k <= max_k:
            raise ValueError(f"k must be in [1, max_k={max_k}], got {k}")
        self.search = search
        self.query = widgets.Text(value=initial_query, placeholder="type a query, e.g. 'slice the onion'",
                                  description="query", layout=widgets.Layout(width="420px"))
        self.k = widgets.IntSlider(value=k, min=1, max=max_k, description="top k", continuous_update=False)
        self.button = widgets.Button(description="Search", button_style="primary")
        self.table = widgets.HTML()
        self.plot = widgets.Image(format="png")
        self.widget = widgets.VBox([widgets.HBox([self.query, self.k, self.button]), self.table, self.plot])
        self.last: list[RankedVideo] = []
        self.button.on_click(lambda _b: self.run())
        self.query.continuous_update = False
        self.query.observe(lambda change: self.run(), names="value")
        self.k.observe(lambda change: self.run(), names="value")
        if initial_query:
            self.run(initial_query)

    def run(self, query: str | None = None) -> list[RankedVideo]:
        """Search ``query`` (default: the text box), refresh the table and the figure, return the hits."""
        if query is not None and query != self.query.value:
            self.query.value = query  # triggers run() through the observer
            return self.last
        text = self.query.value.strip()
        if not text:
            self.table.value = "<i>type a query</i>"
            return []
        self.last = self.search(text, int(self.k.value))
        self.table.value = _hits_html(self.last)
        self.plot.value = figure_png(ranked_videos_figure(self.last, text))
        return self.last


def figure_png(fig, dpi: int | None = None) -> bytes:
    """Render a Figure to PNG bytes at its own dpi (or ``dpi``) and close it (for widgets)."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi or fig.dpi)
    _plt().close(fig)
    return buffer.getvalue()


def _hits_html(hits: Sequence[RankedVideo]) -> str:
    rows = []
    for rank, hit in enumerate(hits, start=1):
        runs = matching_seconds(hit.per_second_z) if hit.per_second_z is not None else []
        where = ", ".join(f"{s}-{e}s" for s, e in runs[:4])
        if len(runs) > 4:  # the first four runs are listed: say that more follow, and the total
            where += f", ... ({sum(e - s for s, e in runs)} s in all)"
        z = f"{hit.z:.1f}" if np.isfinite(hit.z) else "-"
        steps = "; ".join(f"{s:g}-{e:g}s" for s, e, _ in hit.captions[:3]) or "-"
        rows.append(f"<tr><td>{rank}</td><td>{html.escape(hit.video_id)}</td><td>{hit.score:.2f}</td><td>{z}</td>"
                    f"<td>{where or 'none'}</td><td>{steps}</td></tr>")
    return ("<table><tr><th>#</th><th>video</th><th>score</th><th>z vs nonsense</th><th>seconds that stand out</th>"
            "<th>query's step annotated at</th></tr>" + "".join(rows) + "</table>")


def model_search(pipeline, video_ids: Sequence[str], features: Sequence[np.ndarray],
                 captions: Mapping[str, list[tuple[float, float, str]]] | None = None,
                 null_captions: Sequence[str] | None = None) -> Callable[[str, int], list[RankedVideo]]:
    """A search function for :class:`Explorer` over videos given as per-second S3D features.

    Every video is encoded once here (``vclip.inference.VideoCLIPPipeline.encode_videos``: pooled vectors
    and per-second token states, 32-second windows for long videos), and so are the nonsense captions of
    the baseline (:class:`NullScores`); each query is then one text encoding.

    Args:
        pipeline: a ``vclip.inference.VideoCLIPPipeline`` (only its VideoCLIP model is used).
        video_ids: N ids.
        features: N arrays (T_i, 512).
        captions: optional id -> [(start, end, text)]; a hit keeps those naming the query's step, and 128 of
            them (seeded) are the per-second baseline (without captions: the nonsense ones).
        null_captions: the per-video baseline's texts (default :func:`nonsense_captions`).
    The returned function also has ``.null`` (the :class:`NullScores`).
    """
    import torch

    if len(video_ids) != len(features) or not video_ids:
        raise ValueError(f"need as many feature arrays as video ids (>= 1), got {len(features)} and {len(video_ids)}")
    with torch.inference_mode():
        pooled, states = pipeline.encode_videos([np.asarray(f, dtype=np.float32) for f in features])
        null_texts = pipeline.encode_texts(list(null_captions or nonsense_captions())).float().cpu().numpy()
        pool = sorted({text for items in (captions or {}).values() for _, _, text in items})
        if len(pool) > 128:
            pool = [pool[i] for i in np.random.default_rng(0).choice(len(pool), 128, replace=False)]
        second_texts = pipeline.encode_texts(pool).float().cpu().numpy() if len(pool) >= 2 else None
    pooled_np = pooled.float().cpu().numpy()
    states_np = [s.float().cpu().numpy() for s in states]
    null = NullScores.from_vectors(null_texts, pooled_np, states_np, second_texts)

    def search(query: str, k: int) -> list[RankedVideo]:
        with torch.inference_mode():
            text = pipeline.encode_texts([query])[0].float().cpu().numpy()
        hits = rank_videos(text, pooled_np, states_np, list(video_ids), k, null=null)
        for hit in hits:
            hit.captions = query_captions(query, (captions or {}).get(hit.video_id, []))
        return hits

    search.null = null
    return search


def retrieval_similarity(model, folder, task: str = "youcook2", limit: int = 20):
    """The text->video similarity matrix of the first ``limit`` pairs of a retrieval folder.

    Uses the evaluation's own loading and encoding (``vclip.tasks.load_task_data``, first 32 s of
    each clip, raw dot products). Returns ``(sim (n, n), texts, video_ids)`` with pair i on the diagonal.
    """
    from vclip.tasks import load_task_data
    from vclip.tasks.common import EvalConfig, encode_clips_once, encode_texts_once, eval_mode

    if limit < 2:
        raise ValueError(f"limit must be >= 2, got {limit}")
    data = load_task_data(task, folder)
    keys, texts = data.keys[:limit], data.texts[:limit]
    if len(keys) < 2:
        raise ValueError(f"{folder}: only {len(keys)} evaluable {task} pairs (missing features: {len(data.missing)})")
    config = EvalConfig(progress=False)
    with eval_mode(model):
        text = encode_texts_once(model, list(texts), config)
        video = encode_clips_once(model, list(keys), {k: data.clips[k] for k in keys}, config)
    sim = (text @ video.T).float().cpu().numpy()
    return sim, list(texts), [k[0] for k in keys]


@dataclass
class LocalisationExample:
    """One CrossTask test video as the zero-shot evaluation sees it (inputs of :func:`localisation_figure`)."""

    video_id: str
    task: str  # the task id of tasks_primary.txt
    task_title: str  # its title ("Make Pancakes")
    steps: list[str]
    scores: np.ndarray  # (T, K) log-softmax over steps of the window-averaged per-second scores
    predicted: np.ndarray  # (K,) the second the order-constrained DP picked for each step
    ground_truth: np.ndarray  # (T, K) bool annotated step segments


def crosstask_example(model, folder, index: int = 0) -> LocalisationExample:
    """Score one video of a CrossTask folder exactly as ``vclip.tasks.crosstask`` does, keeping the details.

    ``index`` picks the test video (in the evaluation's order).
    """
    from pathlib import Path

    from vclip.localization import log_softmax, step_localization
    from vclip.tasks import load_task_data
    from vclip.tasks.common import EvalConfig, encode_texts_once, eval_mode, window_scores
    from vclip.tasks.crosstask import RELEASE, read_crosstask

    config = EvalConfig(progress=False)
    data = load_task_data("crosstask", folder, config)
    if not 0 <= index < len(data.videos):
        raise ValueError(f"index {index} outside the {len(data.videos)} CrossTask test videos of {folder}")
    key = data.videos[index]
    task, video_id = key
    with eval_mode(model):
        texts = encode_texts_once(model, list(data.steps[task]), config)
        features = data.features.features(video_id)
        (_, scores), = list(window_scores(model, [(key, features, texts)], config, total=1))
    labels = step_localization(scores)
    release = read_crosstask(folder / RELEASE if (Path(folder) / RELEASE).is_dir() else folder)
    return LocalisationExample(video_id, task, release.primary[task].title, list(data.steps[task]),
                               log_softmax(scores, axis=1),
                               labels.argmax(axis=0), data.targets[key].astype(bool))


@dataclass
class SegmentationExample:
    """One COIN testing video as the zero-shot evaluation sees it (inputs of :func:`segmentation_strips`)."""

    video_id: str
    target: np.ndarray  # (T,) label ids, 0 = background
    predicted: np.ndarray  # (T,) label ids from the threshold rule
    label_names: dict  # id -> label text, for the ids that occur
    threshold: float  # lambda, the largest off-diagonal label-label similarity
    scores: np.ndarray = None  # (T, L) window-averaged scores of every second against every label
    label_vectors: np.ndarray = None  # (L, H) the pooled label texts (label id i + 1 is row i)


def coin_example(model, folder, index: int | None = None) -> SegmentationExample:
    """Segment one COIN testing video exactly as ``vclip.tasks.coin`` does, keeping the details.

    ``index`` picks the testing video (in the evaluation's order); None picks the one with the most
    annotated (non-background) seconds, so that the ground-truth strip has something to show.
    """
    from vclip.tasks import load_task_data
    from vclip.tasks.coin import label_threshold, predict_labels
    from vclip.tasks.common import EvalConfig, encode_texts_once, eval_mode, window_scores

    config = EvalConfig(progress=False)
    data = load_task_data("coin", folder, config)
    if index is None:
        index = int(np.argmax([int((np.asarray(data.targets[v]) > 0).sum()) for v in data.video_ids]))
    if not 0 <= index < len(data.video_ids):
        raise ValueError(f"index {index} outside the {len(data.video_ids)} COIN testing videos of {folder}")
    video_id = data.video_ids[index]
    with eval_mode(model):
        labels = encode_texts_once(model, list(data.labels), config)
        threshold = label_threshold(labels)
        features = data.features.features(video_id)
        (_, scores), = list(window_scores(model, [(video_id, features, labels)], config, total=1))
    predicted = predict_labels(scores, threshold)
    target = np.asarray(data.targets[video_id])
    used = sorted({int(x) for x in np.concatenate([target, predicted]).tolist()} - {0})
    return SegmentationExample(video_id, target, predicted, {i: data.labels[i - 1] for i in used}, float(threshold),
                               np.asarray(scores), labels.float().cpu().numpy())


def coin_labelled_index(model, folder) -> int:
    """The COIN testing video (index in the evaluation's order) on which the zero-shot rule labels the most
    seconds correctly against the annotations (ties: the most seconds labelled at all, then the first).

    Chapter 07 draws it so that the strip shows the rule labelling something; :func:`coin_example` with
    ``index=None`` picks the most annotated video instead, where a small model may label nothing.
    """
    from vclip.tasks import load_task_data
    from vclip.tasks.coin import predict_videos
    from vclip.tasks.common import EvalConfig

    config = EvalConfig(progress=False)
    data = load_task_data("coin", folder, config)
    predictions, _ = predict_videos(model, data, config)
    keys = [(int(((predictions[v] > 0) & (predictions[v] == data.targets[v])).sum()), int((predictions[v] > 0).sum()), -i)
            for i, v in enumerate(data.video_ids)]
    return -max(keys)[2]


# ----------------------------------------------------------------------------------------------------
# 04: the ablations' paired differences (section 5.5, Table 7)


def paired_differences_figure(by_view: Mapping[str, Sequence[tuple[float, float]]], views: Sequence[str],
                              by_step: Mapping[str, Sequence[tuple[float, float]]], steps: Sequence[int],
                              title: str = ""):
    """Paired differences (mean, 95% half width) of the paper's recipe minus each ablation, two panels:
    by evaluation view at the end of training (``by_view[ablation][i]`` for ``views[i]``) and on the
    headline by training length (``by_step[ablation][j]`` at ``steps[j]``). Above zero: the paper's idea
    helps. The views' names are written on two lines ("youcook2" / "same step"), so that they never overlap;
    one legend sits below the panels, where it hides no error bar.
    """
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(8.6, 3.7), gridspec_kw={"width_ratios": [1.15, 1]})
    colors = ("tab:green", "tab:purple", "tab:orange", "tab:blue")
    offsets = np.linspace(-0.12, 0.12, max(len(by_view), 1))
    spacing = (max(steps) - min(steps)) / max(len(steps) - 1, 1) if len(steps) > 1 else 1.0
    for (ablation, points), color, shift in zip(by_view.items(), colors, offsets):
        m, h = np.asarray(points, dtype=float).reshape(-1, 2).T
        axes[0].errorbar(np.arange(len(m)) + shift, m, yerr=h, fmt="o", color=color, capsize=4,
                         label=f"paper - {ablation}")
        m, h = np.asarray(by_step[ablation], dtype=float).reshape(-1, 2).T
        axes[1].errorbar(np.asarray(steps, dtype=float) + shift * spacing, m, yerr=h, fmt="o-", color=color,
                         capsize=4, label=f"paper - {ablation}")
    names = [v.replace("youcook2_", "youcook2\n").replace("_", " ") for v in views]
    axes[0].set_xticks(range(len(views)), names, fontsize=8)
    axes[0].set(ylabel="R@1 difference (points)", title="by evaluation view (end of training)")
    axes[1].set_xticks(list(steps))
    axes[1].set(xlabel="training updates", ylabel="headline R@1 difference (points)",
                title="by training length (headline)")
    for ax in axes:
        ax.axhline(0, color="gray", lw=0.8)
    handles, labels = axes[0].get_legend_handles_labels()  # one legend, below the panels: it hides no point
    fig.legend(handles, labels, loc="lower center", ncol=max(len(labels), 1), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def coin_head_example(model, head, folder, video_id: str) -> SegmentationExample:
    """Segment one COIN testing video with a fine-tuned segmentation head, as
    :meth:`vclip.tasks.coin.CoinFinetuning.evaluate` does (each second: the argmax of the window-averaged logits,
    0 = background), so that it can be drawn beside :func:`coin_example`'s zero-shot strip of the same video.

    ``threshold`` is NaN (the head needs no λ); ``scores`` are the (T, L + 1) logits, column 0 background.
    """
    from vclip.tasks import load_task_data
    from vclip.tasks.common import EvalConfig, eval_mode, window_scores

    config = EvalConfig(progress=False)
    data = load_task_data("coin", folder, config)
    if video_id not in data.video_ids:
        raise ValueError(f"{video_id!r} is not one of the {len(data.video_ids)} COIN testing videos of {folder}")
    if head.num_labels != len(data.labels):
        raise ValueError(f"the head has {head.num_labels} labels, {folder} has {len(data.labels)}")
    weight = head.classifier.weight.detach().float().cpu()
    bias = head.classifier.bias.detach().double().cpu().numpy()
    with eval_mode(model):
        (_, scores), = list(window_scores(model, [(video_id, data.features.features(video_id), weight)], config, total=1))
    logits = np.asarray(scores) + bias  # a Linear is a dot product with its rows plus a bias
    predicted = np.argmax(logits, axis=1)
    target = np.asarray(data.targets[video_id])
    used = sorted({int(x) for x in np.concatenate([target, predicted]).tolist()} - {0})
    return SegmentationExample(video_id, target, predicted, {i: data.labels[i - 1] for i in used}, float("nan"),
                               logits, weight.numpy())
