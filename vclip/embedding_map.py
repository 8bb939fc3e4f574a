"""A map of the videos: the vectors retrieval searches, projected to 2-D and coloured by the world's truth.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 3.4, "Retrieval Augmented Training": each video is summarised
by the mean of its clips' video and text embeddings, and a group is drawn from one video's nearest neighbours.
Reference (fairseq ``examples/MMPT``): ``mmpt/modules/vectorpool.py`` (the per-video vector) and
``mmpt/tasks/retritask.py`` (the groups). What the search finds depends on what the model has learned: before
training, neighbours are videos whose features happen to be close; after training, videos of the same domain,
base ("make _ soup") and task should lie together.

* :func:`project_2d`: (N, H) -> (N, 2) with scikit-learn (t-SNE or PCA), deterministic for a seed;
* :func:`neighbour_shares`: the share of each video's nearest neighbours *in the full vector space* (what the
  search sees, not the picture) that share its domain, base and task, beside :func:`neighbour_bounds` (what
  random neighbours would share, and the most any space could: a task with two videos has one same-task video);
* :func:`embedding_map`: one model's map of a synthetic world's training videos, with one retrieved group
  (the first group :func:`vclip.knobs.knob_view` shows for the same seed, V and k);
* :func:`embedding_map_figure`: maps (rows, e.g. before and after training) x colourings (domain, base, task),
  the retrieved group outlined.

t-SNE keeps neighbourhoods and distorts distances: clusters that lie apart in the picture need not lie apart in
the vector space, and cluster sizes mean nothing. :func:`neighbour_shares` is the number to quote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

METHODS = ("tsne", "pca")
COLOURINGS = ("domain", "base", "task")


def project_2d(vectors: np.ndarray, method: str = "tsne", seed: int = 0, perplexity: float = 30.0,
               threads: int = 1) -> np.ndarray:
    """Project the rows of ``vectors`` (N, H) to 2-D: (N, 2) float64.

    ``method``: "tsne" (scikit-learn's ``TSNE``, PCA initialisation, ``perplexity`` capped at (N - 1) / 3) or
    "pca" (``PCA``, signs fixed so that each axis's largest loading is positive). The same ``vectors`` and
    ``seed`` give the same coordinates. ``threads`` caps the OpenMP/BLAS threads (threadpoolctl): t-SNE's
    threads spin-wait, and on a busy 2-core machine one thread was four times faster than the default
    (512 videos: 3.3 s of CPU against 24 s).
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or len(vectors) < 3:
        raise ValueError(f"vectors must be an (N, H) array with N >= 3, got shape {vectors.shape}")
    if not np.isfinite(vectors).all():
        raise ValueError(f"vectors contains {int((~np.isfinite(vectors)).sum())} NaN or inf values")
    with threadpool_limits(threads):
        if method == "pca":
            pca = PCA(n_components=2, random_state=seed).fit(vectors)
            signs = np.sign(pca.components_[np.arange(2), np.abs(pca.components_).argmax(axis=1)])
            return pca.transform(vectors) * np.where(signs == 0, 1.0, signs)
        tsne = TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(perplexity, (len(vectors) - 1) / 3))
        return tsne.fit_transform(vectors)


def neighbour_shares(vectors: np.ndarray, labels: Mapping[str, Sequence], k: int = 5) -> dict[str, float]:
    """{colouring: percentage of (video, one of its ``k`` nearest other videos by L2 distance) pairs with the same
    label}, for each labelling in ``labels`` (e.g. {"domain": [...], "task": [...]}, one label per row)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    n = len(vectors)
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, {n - 1}] for {n} vectors, got {k}")
    squared = (vectors ** 2).sum(axis=1)
    distance = squared[:, None] + squared[None, :] - 2 * vectors @ vectors.T
    np.fill_diagonal(distance, np.inf)
    nearest = np.argsort(distance, axis=1, kind="stable")[:, :k]  # (N, k)
    shares = {}
    for name, values in labels.items():
        values = np.asarray(values)
        if values.shape != (n,):
            raise ValueError(f"labels[{name!r}] has shape {values.shape}, expected ({n},)")
        shares[name] = 100.0 * float((values[nearest] == values[:, None]).mean())
    return shares


def neighbour_bounds(labels: Mapping[str, Sequence], k: int = 5) -> dict[str, dict[str, float]]:
    """{labelling: {"chance", "ceiling"}} for :func:`neighbour_shares` with ``k`` neighbours: the percentage that
    ``k`` videos drawn at random would share (a label held by c of N videos: (c - 1) / (N - 1), averaged), and
    the most any vector space could give (min(k, c - 1) / k, averaged: a task with two videos gives at most one
    same-task neighbour of five)."""
    bounds = {}
    for name, values in labels.items():
        values = np.asarray(values)
        n = len(values)
        if not 1 <= k < n:
            raise ValueError(f"k must be in [1, {n - 1}] for {n} labels, got {k}")
        _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
        others = counts[inverse] - 1  # per video, the other videos with its label
        bounds[name] = {"chance": 100.0 * float(others.mean()) / (n - 1),
                        "ceiling": 100.0 * float(np.minimum(others, k).mean()) / k}
    return bounds


def world_labels(world, video_ids: Sequence[str] | None = None) -> dict[str, list[str]]:
    """{"domain", "base", "task"}: each video's labels from a synthetic world's truth (a :class:`vclip.knobs.KnobWorld`);
    a base is named by its title with the variant left out ("make _ soup")."""
    from vclip.synthetic.language import DOMAIN_BASES, TASKS_BY_TITLE

    tasks = [TASKS_BY_TITLE[world.truth.video_tasks[v]] for v in (video_ids or world.video_ids)]
    return {"domain": [t.domain for t in tasks],
            "base": [DOMAIN_BASES[t.domain][t.base][0].replace("{}", "_") for t in tasks],
            "task": [t.title for t in tasks]}


@dataclass
class EmbeddingMap:
    """One model's map of a world's training videos.

    Attributes:
        coords: (N, 2) the 2-D projection of the videos' vectors.
        video_ids: the N videos, in row order.
        labels: {"domain", "base", "task"} -> N labels from the world's truth.
        group: one retrieved group, as row indices (the first group of
            :func:`vclip.retrieval.retrieval_groups` over this model's vectors).
        neighbour_percent: :func:`neighbour_shares` of the vectors (not of the picture).
        neighbour_bounds: :func:`neighbour_bounds`, the chance and the ceiling of each share.
        method: "tsne" or "pca".
        neighbours: the k of ``neighbour_percent``.
    """

    coords: np.ndarray
    video_ids: list[str]
    labels: dict[str, list[str]]
    group: list[int]
    neighbour_percent: dict[str, float]
    neighbour_bounds: dict[str, dict[str, float]]
    method: str
    neighbours: int = 5

    def line(self, name: str) -> str:
        """The neighbour shares in words beside their chance and ceiling, rounded to 0.1 percent."""
        shares = ", ".join(f"{key} {value:.1f}% (chance {self.neighbour_bounds[key]['chance']:.1f}, at most "
                           f"{self.neighbour_bounds[key]['ceiling']:.1f})" for key, value in self.neighbour_percent.items())
        return f"{name}: of each video's {self.neighbours} nearest videos (vector space), same {shares}"


def embedding_map(world, model, seed: int = 0, method: str = "tsne", videos_per_group: int = 8,
                  num_candidates: int = 64, neighbours: int = 5, vectors: np.ndarray | None = None) -> EmbeddingMap:
    """Project ``model``'s retrieval vectors of a synthetic world's training videos to 2-D.

    Args:
        world: a :class:`vclip.knobs.KnobWorld` or a synthetic world's folder.
        model: a :class:`vclip.model.VideoCLIP` (e.g. untrained, and a run's ``vclip.checkpoint.load_model``).
        seed: seeds the vectors' clips (:func:`vclip.knobs.world_vectors`), the projection and the group
            (``default_rng([seed, 1])``, as :func:`vclip.knobs.knob_view`).
        videos_per_group, num_candidates: V and k of the outlined retrieved group (exact L2 search).
        neighbours: k of :func:`neighbour_shares`.
        vectors: (N, H) the model's video vectors when already computed (:func:`vclip.knobs.world_vectors`, or
            :func:`vclip.retrieval.video_vectors` of the world's training videos, 4 clips, ``default_rng(seed)``).
    """
    from vclip.knobs import KnobWorld, checked_vectors
    from vclip.retrieval import retrieval_groups

    if not isinstance(world, KnobWorld):
        world = KnobWorld.load(Path(world))
    vectors = checked_vectors(world, model, seed, vectors)
    groups, _ = retrieval_groups(vectors, videos_per_group, np.random.default_rng([seed, 1]), num_candidates,
                                 index="flat")
    labels = world_labels(world)
    return EmbeddingMap(project_2d(vectors, method, seed), list(world.video_ids), labels, list(groups[0]),
                        neighbour_shares(vectors, labels, neighbours), neighbour_bounds(labels, neighbours), method,
                        neighbours)


def _colours(values: Sequence[str], plt):
    """A colour per label: tab10/tab20 for few labels, a cyclic map over sorted labels for many."""
    names = sorted(set(values))
    if len(names) <= 10:
        cmap = plt.get_cmap("tab10")
    elif len(names) <= 20:
        cmap = plt.get_cmap("tab20")
    else:
        cmap = plt.get_cmap("hsv", len(names) + 1)
    index = {name: i for i, name in enumerate(names)}
    return [cmap(index[v] % cmap.N) for v in values], names, {name: cmap(i % cmap.N) for name, i in index.items()}


def embedding_map_figure(coordinates: Sequence[np.ndarray], labels: Mapping[str, Sequence[str]],
                         groups: Sequence[Sequence[int]], row_titles: Sequence[str], suptitle: str = ""):
    """Maps (rows) coloured by each labelling (columns), one group of videos outlined in each row.

    Args:
        coordinates: per row, (N, 2) positions of the same N videos.
        labels: {column name: N labels} (e.g. domain, base, task); a legend is drawn when a column has at most
            10 distinct labels.
        groups: per row, the row indices of the videos to outline (a retrieved group).
        row_titles: per row, its title (e.g. "untrained", "pre-trained, 128 updates").
    Returns:
        a Figure of len(coordinates) x len(labels) panels.
    """
    from vclip.viz import _plt

    if not len(coordinates) == len(groups) == len(row_titles) >= 1:
        raise ValueError(f"embedding_map_figure needs one coordinate array, group and title per row, got "
                         f"{len(coordinates)}, {len(groups)}, {len(row_titles)}")
    if not labels:
        raise ValueError("embedding_map_figure needs at least one labelling (e.g. {'domain': [...]})")
    n = len(coordinates[0])
    for xy in coordinates:
        if np.shape(xy) != (n, 2):
            raise ValueError(f"every coordinate array must be ({n}, 2), got {np.shape(xy)}")
    for name, values in labels.items():
        if len(values) != n:
            raise ValueError(f"labels[{name!r}] has {len(values)} entries for {n} videos")
    for group in groups:
        if len(group) == 0 or min(group) < 0 or max(group) >= n:
            raise ValueError(f"a group must hold row indices in [0, {n}), got {list(group)[:8]}")
    plt = _plt()
    rows, cols = len(coordinates), len(labels)
    fig, axes = plt.subplots(rows, cols, figsize=(2.9 * cols, 2.7 * rows + 0.4), squeeze=False)
    for r, (xy, group, title) in enumerate(zip(coordinates, groups, row_titles)):
        xy = np.asarray(xy)
        for c, (name, values) in enumerate(labels.items()):
            ax = axes[r][c]
            colours, names, colour_of = _colours(list(values), plt)
            ax.scatter(xy[:, 0], xy[:, 1], s=6, c=colours, alpha=0.7, linewidths=0)
            ax.scatter(xy[list(group), 0], xy[list(group), 1], s=40, facecolors="none", edgecolors="black",
                       linewidths=1.0, label=f"one retrieved group ({len(group)} videos)")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{title}: by {name} ({len(names)})", fontsize=8)
            if r == 0 and c == cols - 1:
                ax.legend(fontsize=6, loc="lower right", framealpha=0.8)
            if r == rows - 1 and len(names) <= 10:
                from matplotlib.lines import Line2D

                handles = [Line2D([], [], marker="o", ls="", color=colour_of[v], label=v, markersize=4) for v in names]
                ax.legend(handles=handles, fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2,
                          frameon=False)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig


__all__ = ["COLOURINGS", "METHODS", "EmbeddingMap", "embedding_map", "embedding_map_figure", "neighbour_bounds",
           "neighbour_shares",
           "project_2d", "world_labels"]
