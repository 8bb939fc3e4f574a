"""Retrieval-augmented training: groups of similar videos, re-formed once per epoch.

Paper: VideoCLIP section 3.4, "Retrieval Augmented Training": each video is summarised by the mean
of its clips' video and text embeddings, a dense index finds its nearest videos, and a training batch
is drawn from one video's neighbourhood, so the in-batch negatives are hard.

Reference (fairseq ``examples/MMPT``):

* ``mmpt/tasks/retritask.py``: the pass runs before every epoch including the first; the embedding
  pass uses aligned clips (``VariedLenAligner``), 16 per video, model in eval mode without gradients;
  ``VideoRetriPredictor.predict_loop`` draws floor(N/32) query videos, searches k = 64 neighbours,
  forms [query] + [hits != query] and samples 32 of them (the query may be dropped).
* ``mmpt/modules/vectorpool.py``: per clip (pooled video + pooled text) / 2, mean over the clips.
* ``mmpt/modules/retri.py``: faiss ``IndexIVFFlat`` (L2, 512 lists, nprobe 1), one index per rank
  over that rank's share of the videos; its k-means trains on the first 512 x 48 = 24,576 vectors of the
  share (``examples_per_cent_to_train`` 48; all of them when the share is smaller), with faiss's
  k-means seed (1234, the same every epoch), then every vector is added.

Index choice here: an exact ``IndexFlatL2`` for up to ``exact_max_videos`` (50,000) vectors, where an
exact search of N/V queries costs only N^2/V * H flops; above that an ``IndexIVFFlat`` whose size,
training sample and nprobe were chosen by measurement at 100k, 300k and 1.2M videos (:func:`auto_ivf`,
``benchmarks/bench_retrieval.py``, docs/performance.md). The epoch's N/V queries are searched list
by list (:func:`search_index`): the queries that visit one inverted list are compared with its
vectors in one matrix product, which is several times faster than faiss's per-query scan.
``index="ivf512"`` with nprobe 1 reproduces the reference's index (512 lists, k-means on the share's
first 24,576 vectors); ``index="ivf"`` is faiss's default training with round(4 sqrt(N)) lists. All
randomness comes from a ``numpy.random.Generator``, and the k-means seed is drawn from it (the
reference keeps faiss's fixed seed 1234), so groups are deterministic given the run's seed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import faiss
import numpy as np
import torch
from faiss.contrib.big_batch_search import big_batch_search

from vclip.progress import progress_bar
from vclip.sampling import SamplingConfig, sample_group

log = logging.getLogger(__name__)

INDEX_KINDS = ("auto", "flat", "ivf", "ivf512")


@dataclass
class RetrievalStats:
    """What one retrieval pass did and what it cost (seconds)."""

    num_videos: int = 0
    num_groups: int = 0
    index: str = ""
    nlist: int = 0
    nprobe: int = 0
    topped_up_groups: int = 0  # groups with fewer than V candidates, completed with random videos
    queries_dropped: int = 0  # groups whose query video was not among the V drawn (as the reference)
    embed_seconds: float = 0.0
    index_seconds: float = 0.0
    search_seconds: float = 0.0
    extra: dict = field(default_factory=dict)


@torch.no_grad()
def video_vectors(
    model,
    store,
    video_ids: Sequence[str],
    clips_per_video: int,
    rng: np.random.Generator,
    sampling: SamplingConfig | None = None,
    videos_per_batch: int = 32,
    device: torch.device | str = "cpu",
    autocast_dtype: torch.dtype | None = None,
    progress: bool = True,
) -> np.ndarray:
    """One vector per video: the mean over its clips of (pooled video + pooled text) / 2.

    Clips are sampled *aligned* (the reference's embedding pass uses ``VariedLenAligner``, whatever
    the training alignment), ``clips_per_video`` per video. The model runs in eval mode without
    gradients; its training mode is restored afterwards.

    Returns:
        (N, H) float32, row i for ``video_ids[i]``.
    """
    base = sampling or SamplingConfig()
    aligned = dataclasses.replace(base, alignment="exact")
    was_training = model.training
    model.eval()
    out = []
    device = torch.device(device)
    try:
        for i in progress_bar(range(0, len(video_ids), videos_per_batch), desc="retrieval: embed", enabled=progress):
            chunk = video_ids[i : i + videos_per_batch]
            batch = sample_group(store, chunk, clips_per_video, rng, aligned).to(device)
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                pv = model.encode_video(batch.vfeats, batch.vmask)
                pt = model.encode_text(batch.input_ids, batch.attention_mask)
            clip_vecs = ((pv.float() + pt.float()) / 2).view(len(chunk), clips_per_video, -1)
            out.append(clip_vecs.mean(dim=1).cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out).astype(np.float32)


def auto_ivf(num_vectors: int) -> tuple[int, int]:
    """(lists, nprobe) of ``index="auto"`` above the exact limit, chosen by ``benchmarks/bench_retrieval.py``.

    Lists: the power of two nearest sqrt(N) (256 at 100k videos, 512 at 300k, 1024 at 1.2M), each
    k-means trained on 32 vectors per list for 10 iterations, with an HNSW graph over the centroids
    as the coarse quantizer (adding N vectors then costs N log L distance computations, not N x L).
    nprobe: :func:`auto_nprobe` (8 at 256 lists, 13 at 512, 23 at 1024).

    Why, measured on clustered 768-d vectors (docs/performance.md): recall@64 follows the share of
    the lists searched more than their number, and a fixed share (the previous rule, 1/32) makes the
    search grow as N^2, like exact search. At 1.2M videos, 23 of 1024 lists gave recall 0.977 for
    13x less than exact search (build + the epoch's searches); 32 of 2048 lists (a smaller share,
    1/64) gave 0.948; at 100k, 8 of 256 lists gave 0.98. So the share falls slowly with N:
    nprobe ~ L^(3/4) ~ N^(3/8), and the search scans N^(7/8) vectors per query, N^1.875 in all.
    """
    if num_vectors < 1:
        raise ValueError(f"cannot size an index for {num_vectors} vectors")
    lists = 2 ** max(0, round(math.log2(math.sqrt(num_vectors))))
    return lists, auto_nprobe(lists)


def auto_nprobe(lists: int) -> int:
    """Lists searched per query by ``index="auto"``: 8 at 256 lists, growing as (lists / 256)^(3/4)."""
    return max(1, min(lists, round(8 * (lists / 256) ** 0.75)))


REFERENCE_LISTS = 512  # the reference's IVF lists (vectorpool.py build_retriver: centroids=512)
REFERENCE_TRAIN_PER_LIST = 48  # its k-means sample per list (examples_per_cent_to_train=48): the first 24,576 vectors


def choose_nlist(num_vectors: int) -> int:
    """IVF lists for N vectors: round(4 * sqrt(N)), the low end of the faiss guideline."""
    if num_vectors < 1:
        raise ValueError(f"cannot size an index for {num_vectors} vectors")
    return max(1, round(4 * math.sqrt(num_vectors)))


def build_index(
    vectors: np.ndarray,
    index: str = "auto",
    exact_max_videos: int = 50_000,
    nlist: int | None = None,
    nprobe: int = 1,
    seed: int = 0,
):
    """A faiss L2 index over ``vectors`` (N, H).

    Args:
        index: "flat" (exact), "ivf" (nlist from :func:`choose_nlist` unless given), "ivf512" (the
            reference: 512 lists), or "auto" (flat up to ``exact_max_videos`` vectors, else the
            measured choice of :func:`auto_ivf`).
        nprobe: lists visited per query (the reference leaves faiss's default, 1); "auto" visits at
            least the lists :func:`auto_ivf` chooses.
        seed: the k-means seed (the reference keeps faiss's default, 1234, every epoch).

    Returns:
        (index, description) where description is e.g. "flat" or "ivf1265/nprobe1".
    """
    if index not in INDEX_KINDS:
        raise ValueError(f"index must be one of {INDEX_KINDS}, got {index!r}")
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) == 0:
        raise ValueError(f"vectors must be a non-empty (N, H) array, got shape {vectors.shape}")
    n, dim = vectors.shape
    if index == "auto" and n > exact_max_videos:
        lists, probe = auto_ivf(n)
        return _ivf(vectors, lists, max(nprobe, probe), seed, points_per_list=32, kmeans_iters=10, hnsw_coarse=True)
    if index in ("auto", "flat"):
        flat = faiss.IndexFlatL2(dim)
        flat.add(vectors)
        return flat, "flat"
    if index == "ivf512":  # the reference: k-means on the share's first 512 x 48 vectors (retri.py)
        return _ivf(vectors, REFERENCE_LISTS, nprobe, seed, train_first=REFERENCE_LISTS * REFERENCE_TRAIN_PER_LIST)
    return _ivf(vectors, nlist or choose_nlist(n), nprobe, seed)


def _ivf(vectors, lists, nprobe, seed, points_per_list=None, kmeans_iters=None, hnsw_coarse=False, train_first=None):
    """An ``IndexIVFFlat`` (L2) with ``lists`` k-means lists; by default trained as faiss does (on every
    vector, which faiss subsamples to 256 per list); ``train_first``: on the first that many vectors only."""
    n, dim = vectors.shape
    if lists > n:
        raise ValueError(f"an IVF index with {lists} lists needs at least {lists} vectors, got {n}")
    quantizer = faiss.IndexHNSWFlat(dim, 32) if hnsw_coarse else faiss.IndexFlatL2(dim)
    ivf = faiss.IndexIVFFlat(quantizer, dim, lists, faiss.METRIC_L2)
    ivf.cp.seed = int(seed)
    if points_per_list:
        ivf.cp.max_points_per_centroid = int(points_per_list)
    if kmeans_iters:
        ivf.cp.niter = int(kmeans_iters)
    ivf.train(vectors[:train_first] if train_first else vectors)
    ivf.add(vectors)
    ivf.nprobe = int(nprobe)
    desc = f"ivf{lists}" + ("/hnsw/train32" if hnsw_coarse else "")
    return ivf, f"{desc}/nprobe{nprobe}"


def search_index(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(distances, ids) of the ``k`` nearest neighbours of each query, as ``index.search`` returns.

    An IVF index visited by many queries is searched list by list (faiss's ``big_batch_search``):
    the queries assigned to one inverted list are compared with all of that list's vectors in one
    BLAS matrix product, then merged into per-query heaps. The candidates are the same as
    ``index.search``'s (the same lists are scanned exactly), but an epoch's N/32 queries cost
    several times less (docs/performance.md). Other indexes, and few queries, use ``index.search``.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    ivf = isinstance(index, faiss.IndexIVFFlat)
    if not ivf or len(queries) * index.nprobe < 4 * index.nlist:  # too few queries per list for BLAS to pay
        return index.search(queries, k)
    with contextlib.redirect_stdout(io.StringIO()):  # faiss 1.15 prints per-list progress even at verbose=0
        return big_batch_search(index, queries, k, verbose=1)


def random_groups(num_videos: int, videos_per_group: int, rng: np.random.Generator) -> list[list[int]]:
    """floor(N/V) groups of V distinct videos from a random permutation (``--no-retrieval``)."""
    if num_videos < videos_per_group:
        raise ValueError(f"{num_videos} videos cannot fill one group of {videos_per_group} videos")
    perm = rng.permutation(num_videos)
    n_groups = num_videos // videos_per_group
    return [perm[g * videos_per_group : (g + 1) * videos_per_group].tolist() for g in range(n_groups)]


def retrieval_groups(
    vectors: np.ndarray,
    videos_per_group: int,
    rng: np.random.Generator,
    num_candidates: int = 64,
    index: str = "auto",
    exact_max_videos: int = 50_000,
    nlist: int | None = None,
    nprobe: int = 1,
    top_up: bool = True,
) -> tuple[list[list[int]], RetrievalStats]:
    """floor(N/V) groups, each V videos drawn from a random query video's nearest neighbours.

    For each of floor(N/V) distinct random query videos: search ``num_candidates`` L2 neighbours,
    form [query] + [hits != query] and, when longer than V, draw V of them without replacement (the
    query may be dropped, as the reference). An IVF search can return fewer than V candidates; such
    a group is completed with random other videos so that every batch has V*C pairs (``top_up``,
    counted in ``stats.topped_up_groups``); with ``top_up=False`` it stays short, as the reference's.

    Returns:
        (groups, stats): groups are lists of row indices into ``vectors``.
    """
    n = len(vectors)
    if n < videos_per_group:
        raise ValueError(f"{n} videos cannot fill one group of {videos_per_group} videos")
    stats = RetrievalStats(num_videos=n)
    t0 = time.perf_counter()
    faiss_index, stats.index = build_index(
        vectors, index, exact_max_videos, nlist, nprobe, seed=int(rng.integers(0, 2**31 - 1))
    )
    stats.nlist = getattr(faiss_index, "nlist", 0)
    stats.nprobe = getattr(faiss_index, "nprobe", 0)
    stats.index_seconds = time.perf_counter() - t0

    n_groups = n // videos_per_group
    queries = rng.choice(n, size=n_groups, replace=False)
    t0 = time.perf_counter()
    k = min(num_candidates, n)
    _, hits = search_index(faiss_index, vectors[queries], k)
    stats.search_seconds = time.perf_counter() - t0

    groups = []
    for q, row in zip(queries.tolist(), hits):
        cands = [q] + [int(h) for h in row if h >= 0 and h != q]
        if len(cands) > videos_per_group:
            pick = rng.choice(len(cands), size=videos_per_group, replace=False)
            group = [cands[i] for i in pick]
        else:
            group = cands
        if len(group) < videos_per_group and top_up:
            stats.topped_up_groups += 1
            taken = set(group)
            while len(group) < videos_per_group:
                v = int(rng.integers(0, n))
                if v not in taken:
                    taken.add(v)
                    group.append(v)
        stats.queries_dropped += q not in group
        groups.append(group)
    stats.num_groups = len(groups)
    return groups, stats
