"""The embedding map (vclip.embedding_map): deterministic 2-D coordinates, neighbour shares against a naive
loop, the outlined group being the retrieved group, and the figure."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def small_world(synthetic_world):
    from vclip.knobs import KnobWorld

    world = KnobWorld.load(synthetic_world)
    return dataclasses.replace(world, video_ids=world.video_ids[:80])


@pytest.fixture(scope="module")
def tiny_model():
    from vclip.model import VideoCLIP

    torch.manual_seed(0)
    return VideoCLIP.from_preset("tiny").eval()


@pytest.mark.parametrize("method", ["tsne", "pca"])
def test_projection_shape_and_determinism(method):
    from vclip.embedding_map import project_2d

    rng = np.random.default_rng(0)
    vectors = np.concatenate([rng.normal(0, 1, (30, 16)), rng.normal(6, 1, (30, 16))])
    xy = project_2d(vectors, method, seed=1)
    assert xy.shape == (60, 2) and np.isfinite(xy).all()
    np.testing.assert_array_equal(project_2d(vectors, method, seed=1), xy)
    # two well-separated clusters stay apart: every point is nearer its own cluster's centre
    centres = np.stack([xy[:30].mean(0), xy[30:].mean(0)])
    nearest = np.linalg.norm(xy[:, None] - centres[None], axis=-1).argmin(axis=1)
    assert (nearest == np.repeat([0, 1], 30)).all()


def test_pca_equals_the_principal_axes():
    from vclip.embedding_map import project_2d

    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(40, 5)) * np.array([5.0, 2.0, 0.5, 0.1, 0.1])
    centred = vectors - vectors.mean(0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ axes[:2].T
    np.testing.assert_allclose(np.abs(project_2d(vectors, "pca")), np.abs(expected), rtol=1e-6, atol=1e-8)


def test_bad_input_is_refused():
    from vclip.embedding_map import neighbour_shares, project_2d

    with pytest.raises(ValueError, match="method must be one of"):
        project_2d(np.zeros((5, 3)), "umap")
    with pytest.raises(ValueError, match="N >= 3"):
        project_2d(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"labels\['task'\] has shape"):
        neighbour_shares(np.zeros((5, 3)), {"task": ["a"] * 4}, k=2)


def test_neighbour_shares_match_a_naive_loop():
    from vclip.embedding_map import neighbour_shares

    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(25, 4))
    labels = rng.integers(0, 3, 25).astype(str)
    same = 0
    for i in range(25):
        order = sorted((float(np.sum((vectors[i] - vectors[j]) ** 2)), j) for j in range(25) if j != i)
        same += sum(labels[j] == labels[i] for _, j in order[:4])
    assert neighbour_shares(vectors, {"task": labels}, k=4)["task"] == pytest.approx(100.0 * same / (25 * 4))


def test_neighbour_bounds_by_hand():
    from vclip.embedding_map import neighbour_bounds

    # labels: a x3, b x2, c x1 (N = 6), k = 2. Others with one's label: a 2, b 1, c 0.
    bounds = neighbour_bounds({"task": ["a", "a", "a", "b", "b", "c"]}, k=2)["task"]
    assert bounds["chance"] == pytest.approx(100 * (3 * 2 + 2 * 1 + 0) / 6 / 5)
    assert bounds["ceiling"] == pytest.approx(100 * (3 * 1.0 + 2 * 0.5 + 0) / 6)


def test_the_map_outlines_the_retrieved_group_and_labels_from_the_truth(small_world, tiny_model):
    from vclip.embedding_map import embedding_map, embedding_map_figure
    from vclip.knobs import knob_view, world_vectors
    from vclip.retrieval import retrieval_groups
    from vclip.synthetic.language import TASKS_BY_TITLE

    vectors = world_vectors(small_world, tiny_model, seed=0)
    emap = embedding_map(small_world, tiny_model, seed=0, method="pca", videos_per_group=4, num_candidates=8)
    assert emap.coords.shape == (80, 2) and emap.video_ids == small_world.video_ids
    expected, _ = retrieval_groups(vectors, 4, np.random.default_rng([0, 1]), 8, index="flat")
    assert emap.group == expected[0]
    view = knob_view(small_world, tiny_model, group_size=8, num_candidates=8, videos_per_group=4, seed=0,
                     num_groups=1, vectors=vectors)
    assert emap.group == view.retrieved.groups[0]  # the group the knobs show for the same seed, V and k
    again = embedding_map(small_world, tiny_model, seed=0, method="pca", videos_per_group=4, num_candidates=8,
                          vectors=vectors)
    np.testing.assert_array_equal(again.coords, emap.coords)
    for v, task, domain in zip(emap.video_ids, emap.labels["task"], emap.labels["domain"]):
        assert task == small_world.truth.video_tasks[v] and domain == TASKS_BY_TITLE[task].domain
    assert all("_" in base for base in emap.labels["base"])
    assert set(emap.neighbour_percent) == {"domain", "base", "task"}
    assert emap.neighbour_percent["domain"] >= emap.neighbour_percent["base"] >= emap.neighbour_percent["task"]
    assert emap.line("untrained").startswith("untrained: of each video's 5 nearest videos")
    for name, share in emap.neighbour_percent.items():
        assert share <= emap.neighbour_bounds[name]["ceiling"] + 1e-9

    fig = embedding_map_figure([emap.coords, again.coords], emap.labels, [emap.group, again.group],
                               ["untrained", "again"])
    panels = [ax for ax in fig.axes if ax.collections]
    assert len(panels) == 6
    for ax in panels:  # the outline: the second scatter holds exactly the group's points
        np.testing.assert_allclose(ax.collections[1].get_offsets(), emap.coords[emap.group])
    import matplotlib.pyplot as plt

    plt.close(fig)
    with pytest.raises(ValueError, match="row indices"):
        embedding_map_figure([emap.coords], emap.labels, [[80]], ["x"])
    with pytest.raises(ValueError, match="rows for the world's 80 training videos"):
        embedding_map(small_world, tiny_model, vectors=vectors[:10])
