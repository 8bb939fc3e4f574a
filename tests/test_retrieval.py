"""Retrieval-augmented groups (vclip.retrieval): sizes, neighbourhoods, determinism, the embedding pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vclip.retrieval import (
    auto_ivf,
    build_index,
    choose_nlist,
    random_groups,
    retrieval_groups,
    search_index,
    video_vectors,
)
from vclip.sampling import SamplingConfig, sample_group


def clustered_vectors(n_clusters=10, per_cluster=20, dim=32, spread=0.05, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, dim))
    labels = np.repeat(np.arange(n_clusters), per_cluster)
    vecs = centres[labels] + spread * rng.standard_normal((len(labels), dim))
    return vecs.astype(np.float32), labels


def test_random_groups_partition():
    groups = random_groups(103, 8, np.random.default_rng(0))
    assert len(groups) == 12 and all(len(g) == 8 for g in groups)
    flat = [v for g in groups for v in g]
    assert len(set(flat)) == len(flat)  # no video twice in an epoch
    assert groups == random_groups(103, 8, np.random.default_rng(0))
    with pytest.raises(ValueError, match="cannot fill one group"):
        random_groups(5, 8, np.random.default_rng(0))


def test_retrieval_groups_are_neighbourhoods():
    vecs, labels = clustered_vectors()
    groups, stats = retrieval_groups(vecs, 8, np.random.default_rng(0), num_candidates=64)
    assert stats.index == "flat" and stats.num_groups == len(groups) == 200 // 8
    for g in groups:
        assert len(g) == 8 and len(set(g)) == 8
    # k=64 over clusters of 20: the query's own cluster is its 20 nearest, so about 20/64 of a group
    # shares the query's cluster (a random group would share 1/10).
    purity = np.mean([np.mean(labels[g] == np.bincount(labels[g]).argmax()) for g in groups])
    assert purity > 0.25
    # with k = V + 1 the candidates are exactly the query's nearest neighbours: pure clusters
    groups_k, _ = retrieval_groups(vecs, 8, np.random.default_rng(0), num_candidates=9)
    assert all(len(set(labels[g])) == 1 for g in groups_k)
    again, _ = retrieval_groups(vecs, 8, np.random.default_rng(0), num_candidates=64)
    assert again == groups
    other, _ = retrieval_groups(vecs, 8, np.random.default_rng(1), num_candidates=64)
    assert other != groups


def test_ivf_index_for_large_n_and_guideline():
    assert 4 * np.sqrt(1e6) <= choose_nlist(1_000_000) <= 16 * np.sqrt(1e6)
    vecs, labels = clustered_vectors(n_clusters=40, per_cluster=50, dim=16)
    index, desc = build_index(vecs, "auto", exact_max_videos=1000)
    lists, probe = auto_ivf(2000)
    assert (lists, probe) == (32, 2)  # the power of two nearest sqrt(N); nprobe 8 (lists / 256)^(3/4)
    assert desc == f"ivf{lists}/hnsw/train32/nprobe{probe}" and index.ntotal == 2000 and index.nprobe == probe
    _, desc = build_index(vecs, "ivf", nlist=50)
    assert desc == "ivf50/nprobe1"
    groups, stats = retrieval_groups(vecs, 16, np.random.default_rng(0), 64, "auto", exact_max_videos=1000, nprobe=4)
    assert stats.index.startswith("ivf") and len(groups) == 125
    assert all(len(g) == 16 and len(set(g)) == 16 for g in groups)
    assert np.mean([np.bincount(labels[g]).max() / len(g) for g in groups]) > 0.5  # most share one cluster
    with pytest.raises(ValueError, match="index must be one of"):
        build_index(vecs, "hnsw")


def test_paper_index_trains_its_kmeans_on_the_first_24576_vectors_as_the_reference():
    """retri.py finalize_training: db.train(hidden_states[: 512 * 48]), then every vector is added."""
    import faiss

    from vclip.retrieval import REFERENCE_LISTS, REFERENCE_TRAIN_PER_LIST

    first = REFERENCE_LISTS * REFERENCE_TRAIN_PER_LIST
    assert first == 24_576
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((first + 2000, 4)).astype(np.float32)
    vecs[first:] += 5.0  # the vectors past the sample lie elsewhere: k-means on all of them would place centroids there
    index, desc = build_index(vecs, "ivf512", seed=7)
    assert desc == "ivf512/nprobe1" and index.ntotal == len(vecs) and index.nprobe == 1

    def centroids(trained):
        return trained.quantizer.reconstruct_n(0, trained.nlist)

    expected = faiss.IndexIVFFlat(faiss.IndexFlatL2(4), 4, REFERENCE_LISTS, faiss.METRIC_L2)
    expected.cp.seed = 7
    expected.train(vecs[:first])
    np.testing.assert_array_equal(centroids(index), centroids(expected))
    small, _ = build_index(vecs[:1000], "ivf512", seed=7)  # a smaller share: k-means on all of it, as the reference
    all_of_it = faiss.IndexIVFFlat(faiss.IndexFlatL2(4), 4, REFERENCE_LISTS, faiss.METRIC_L2)
    all_of_it.cp.seed = 7
    all_of_it.train(vecs[:1000])
    np.testing.assert_array_equal(centroids(small), centroids(all_of_it))


def test_auto_ivf_probes_a_shrinking_share_of_the_lists():
    # the measured points (docs/performance.md): 256/8 at 100k, 1024/23 at 1.2M
    assert [auto_ivf(n) for n in (100_000, 300_000, 1_200_000)] == [(256, 8), (512, 13), (1024, 23)]
    ns = [10**5, 10**6, 10**7, 10**8]
    choices = [auto_ivf(n) for n in ns]
    shares = [probe / lists for lists, probe in choices]
    assert all(a > b for a, b in zip(shares, shares[1:]))  # so the search grows slower than N^2
    scanned = [n * share for n, share in zip(ns, shares)]  # vectors scanned per query ~ N^(7/8)
    growth = np.polyfit(np.log(ns), np.log(scanned), 1)[0]
    assert 0.75 < growth < 0.95
    with pytest.raises(ValueError, match="cannot size"):
        auto_ivf(0)


def test_search_index_list_by_list_matches_per_query_search():
    vecs, _ = clustered_vectors(n_clusters=40, per_cluster=50, dim=16)
    index, _ = build_index(vecs, "ivf", nlist=32, nprobe=4)
    queries = vecs[::4]  # 500 queries x 4 probes over 32 lists: searched list by list
    dist, ids = search_index(index, queries, 10)
    ref_dist, ref_ids = index.search(queries, 10)
    assert ids.shape == ref_ids.shape == (500, 10)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-4, atol=1e-4)
    assert np.mean(ids == ref_ids) > 0.99  # the same candidates (ties aside)
    few_dist, few_ids = search_index(index, queries[:3], 10)  # few queries: index.search itself
    np.testing.assert_array_equal(few_ids, ref_ids[:3])


def test_video_vectors_match_a_manual_embedding_pass(random_videos):
    from vclip.model import VideoCLIP

    torch.manual_seed(0)
    model = VideoCLIP.from_preset("tiny").train()
    store = random_videos(7)
    vecs = video_vectors(model, store, store.video_ids, 3, np.random.default_rng(3), videos_per_batch=5, progress=False)
    assert vecs.shape == (7, model.config.hidden_size) and vecs.dtype == np.float32
    assert model.training  # the training mode is restored
    # the same aligned clips by hand, one video at a time
    rng = np.random.default_rng(3)
    model.eval()
    expected = []
    with torch.no_grad():
        for start in range(0, 7, 5):
            batch = sample_group(store, store.video_ids[start : start + 5], 3, rng, SamplingConfig(alignment="exact"))
            for v in range(batch.video_index.max() + 1):
                rows = batch.video_index == v
                pv = model.encode_video(batch.vfeats[rows], batch.vmask[rows])
                pt = model.encode_text(batch.input_ids[rows], batch.attention_mask[rows])
                expected.append(((pv + pt) / 2).mean(0).numpy())
    np.testing.assert_allclose(vecs, np.stack(expected), rtol=1e-4, atol=1e-5)


def test_synthetic_neighbours_share_the_task(synthetic_world):
    """On the synthetic world, retrieval groups gather same-task videos far above chance.

    The world has hundreds of tasks (about 1.4 training videos each, as HowTo100M's random pairs rarely
    share a task), so a group cannot be mostly one task; the other members share the query's task many
    times more often than random videos do."""
    from vclip.data.truth import load_truth
    from vclip.training.trainer import open_pretrain_data

    store, train_ids, _ = open_pretrain_data(synthetic_world / "pretrain")
    task_of = load_truth(synthetic_world / "pretrain").video_tasks
    # The mean S3D-like feature of a video summarises its content (an untrained model's vectors are
    # no better than this); the group construction must turn such vectors into same-task groups.
    vecs = np.stack([np.asarray(store.features(v), dtype=np.float32).mean(0) for v in train_ids])
    v = 8
    groups, _ = retrieval_groups(vecs, v, np.random.default_rng(0), num_candidates=2 * v)
    tasks = np.array([task_of[vid] for vid in train_ids])
    same = np.mean([np.mean(tasks[g[1:]] == tasks[g[0]]) for g in groups])
    chance = np.mean([np.mean(tasks == t) for t in tasks])
    random_same = np.mean([np.mean(tasks[g[1:]] == tasks[g[0]]) for g in random_groups(len(tasks), v, np.random.default_rng(0))])
    assert same > 10 * chance and same > 5 * max(random_same, chance), (same, chance, random_same)


def test_short_ivf_groups_are_topped_up_or_kept_short_as_the_reference():
    vecs, _ = clustered_vectors(n_clusters=40, per_cluster=50, dim=16)
    # 512 lists over 2000 vectors, nprobe 1: many lists hold fewer than V = 16 candidates
    filled, stats = retrieval_groups(vecs, 16, np.random.default_rng(0), 64, "ivf512", nprobe=1)
    assert stats.index == "ivf512/nprobe1" and stats.topped_up_groups > 0
    assert all(len(g) == 16 for g in filled)
    short, stats_short = retrieval_groups(vecs, 16, np.random.default_rng(0), 64, "ivf512", nprobe=1, top_up=False)
    assert stats_short.topped_up_groups == 0 and len(short) == len(filled)
    assert sum(len(g) < 16 for g in short) == stats.topped_up_groups
    assert all(len(set(g)) == len(g) >= 1 for g in short)
