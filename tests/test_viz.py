"""vclip.viz: figures from plain arrays (Agg backend), the ranking behind the explorer, and the explorer."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from vclip import viz  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _steps_video(seconds=40, dim=512, seed=0):
    """Features made of 4 blocks of 10 seconds, each a noisy copy of its own direction."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(4, dim))
    feats = directions[np.arange(seconds) // 10] + 0.1 * rng.normal(size=(seconds, dim))
    return feats.astype(np.float32)


def test_pca_project_recovers_the_dominant_direction_with_fixed_sign():
    rng = np.random.default_rng(0)
    t = np.linspace(-1, 1, 50)
    direction = rng.normal(size=8)
    x = t[:, None] * direction[None] * 10 + 0.01 * rng.normal(size=(50, 8))
    p1 = viz.pca_project(x, 2)
    p2 = viz.pca_project(-x[::-1][::-1] * 1.0, 2)
    assert p1.shape == (50, 2)
    assert abs(np.corrcoef(p1[:, 0], t)[0, 1]) > 0.999
    np.testing.assert_allclose(np.abs(p1), np.abs(p2), atol=1e-9)
    # fewer dimensions than components: padded with zeros
    assert viz.pca_project(x[:, :1], 3).shape == (50, 3)


def test_feature_colors_group_seconds_of_the_same_step():
    colors = viz.feature_colors(_steps_video())
    assert colors.shape == (40, 3) and colors.min() >= 0 and colors.max() <= 1
    within = np.linalg.norm(colors[0:10] - colors[0:10].mean(0), axis=1).mean()
    between = np.linalg.norm(colors[0:10].mean(0) - colors[10:20].mean(0))
    assert between > 3 * within


def test_video_timeline_draws_features_captions_and_pairs():
    fig = viz.video_timeline(_steps_video(), [0, 4.5, 12], [5, 11, 20], ["cut the onion", "add oil", "stir"],
                             clip_pairs=[((0, 11), (3, 15)), ((12, 20), (9, 30))], title="v0")
    axes = fig.axes
    assert len(axes) == 3
    caption_bars = [p for p in axes[1].patches]
    assert len(caption_bars) == 3
    assert [t.get_text() for t in axes[1].texts] == ["cut the onion", "add oil", "stir"]
    pair_bars = sorted((round(p.get_x(), 3), round(p.get_width(), 3)) for p in axes[2].patches)
    assert pair_bars == [(0, 11), (3, 12), (9, 21), (12, 8)]
    assert axes[-1].get_xlim() == (0, 40)


def test_video_timeline_rejects_bad_captions():
    with pytest.raises(ValueError, match="equal lengths"):
        viz.video_timeline(None, [0, 1], [1], ["a", "b"])
    with pytest.raises(ValueError, match=r"end < start"):
        viz.video_timeline(None, [0, 5], [1, 4], ["a", "b"])
    with pytest.raises(ValueError, match="NaN"):
        viz.video_timeline(np.full((3, 4), np.nan), [0], [1], ["a"])


def test_retrieval_group_figure_reports_group_purity():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2, 3], 10)
    vectors = rng.normal(size=(4, 16))[labels] + 0.05 * rng.normal(size=(40, 16))
    groups = [list(range(0, 8)), [10, 11, 12, 30, 31, 32]]
    fig = viz.retrieval_group_figure(vectors, labels, groups, label_names={0: "a", 1: "b", 2: "c", 3: "d"})
    bars = fig.axes[1].patches
    heights = [round(b.get_height(), 3) for b in bars]
    assert heights == [1.0, 0.5, 0.25, 0.25]  # purity of both groups, then the random expectation
    with pytest.raises(ValueError, match="outside"):
        viz.retrieval_group_figure(vectors, labels, [[0, 40]])
    with pytest.raises(ValueError, match="labels must have shape"):
        viz.retrieval_group_figure(vectors, labels[:5], groups)


def test_loss_curves_smooths_and_validates():
    fig = viz.loss_curves({"a": ([0, 1, 2, 3], [4.0, 3.0, 2.0, 1.0])}, chance=2 * np.log(8), smooth=2)
    line = fig.axes[0].lines[0]
    np.testing.assert_allclose(line.get_ydata(), [3.5, 2.5, 1.5])
    np.testing.assert_allclose(line.get_xdata(), [1, 2, 3])
    assert fig.axes[0].lines[1].get_ydata()[0] == pytest.approx(2 * np.log(8))
    with pytest.raises(ValueError, match="equal-length"):
        viz.loss_curves({"a": ([0, 1], [1.0])})
    with pytest.raises(ValueError, match="at least one"):
        viz.loss_curves({})


def test_similarity_heatmap_marks_correct_and_wrong_top1():
    sim = np.eye(4) + 0.01
    sim[3, 0] = 5.0  # row 3 picks column 0: wrong
    fig = viz.similarity_heatmap(sim, row_labels=list("abcd"), col_labels=list("ABCD"))
    ax = fig.axes[0]
    correct, wrong = ax.collections[0].get_offsets(), ax.collections[1].get_offsets()
    assert np.asarray(correct).tolist() == [[0, 0], [1, 1], [2, 2]]
    assert np.asarray(wrong).tolist() == [[0, 3]]
    with pytest.raises(ValueError, match="row_labels has 2"):
        viz.similarity_heatmap(sim, row_labels=["a", "b"])


def test_localisation_figure_recall_in_title():
    scores = np.zeros((20, 3))
    gt = np.zeros((20, 3), dtype=bool)
    gt[2:5, 0] = gt[8:12, 1] = gt[15:18, 2] = True
    fig = viz.localisation_figure(scores, [3, 13, 16], gt, ["a", "b", "c"])
    title = fig.axes[0].get_title()
    assert "2 of 3 annotated steps found" in title
    assert fig.axes[1].get_ylabel() == "log-softmax over steps"  # the colour bar says what the colour means
    assert len(fig.axes[0].patches) == 3  # one ground-truth segment per step
    with pytest.raises(ValueError, match="one second in"):
        viz.localisation_figure(scores, [3, 13, 20], gt)
    with pytest.raises(ValueError, match="shape"):
        viz.localisation_figure(scores, [3, 13, 16], gt[:, :2])


def test_segmentation_strips_background_is_grey_and_labels_are_colored():
    gt = [0, 0, 5, 5, 7, 7, 0]
    pred = [0, 5, 5, 5, 0, 7, 0]
    fig = viz.segmentation_strips({"ground truth": gt, "prediction": pred}, label_names={5: "cut", 7: "fry"})
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (2, 7)
    assert image[0].tolist() == [0, 0, 1, 1, 2, 2, 0]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["background", "cut", "fry"]
    with pytest.raises(ValueError, match="equal length"):
        viz.segmentation_strips({"a": [0, 1], "b": [0]})


def test_matching_seconds_and_rank_videos():
    per_second_z = np.array([0, 0, 2.5, 3, 0, 0, 0, 2.0, 1.9, 0], dtype=float)
    assert viz.matching_seconds(per_second_z) == [(2, 4), (7, 8)]  # at least 2 sd above nonsense
    assert viz.matching_seconds(per_second_z, 2.6) == [(3, 4)]
    assert viz.matching_seconds(np.zeros(10)) == []  # nothing stands out: nothing is shaded
    rng = np.random.default_rng(0)
    text = rng.normal(size=8)
    videos = rng.normal(size=(5, 8))
    videos[3] = 3 * text
    states = [rng.normal(size=(6, 8)) for _ in range(5)]
    states[3][4] = 10 * text
    hits = viz.rank_videos(text, videos, states, [f"v{i}" for i in range(5)], k=3)
    assert [h.video_id for h in hits][0] == "v3" and len(hits) == 3
    scores = videos @ text
    assert [h.score for h in hits] == sorted(scores, reverse=True)[:3]
    assert hits[0].per_second.argmax() == 4
    with pytest.raises(ValueError, match="5 video vectors, 4 per-second"):
        viz.rank_videos(text, videos, states[:4], [f"v{i}" for i in range(5)])


def test_null_scores_calibrate_a_query_against_nonsense():
    rng = np.random.default_rng(0)
    text = rng.normal(size=8)
    videos = rng.normal(size=(4, 8)) + 5.0  # a large offset every text shares
    states = [rng.normal(size=(6, 8)) + 5.0 for _ in range(4)]
    null = viz.NullScores.from_vectors(rng.normal(size=(64, 8)), videos, states, rng.normal(size=(32, 8)) + 1.0)
    hits = viz.rank_videos(text, videos, states, [f"v{i}" for i in range(4)], k=4, null=null)
    for hit in hits:
        i = int(hit.video_id[1])
        assert hit.z == pytest.approx((videos[i] @ text - null.video_mean[i]) / null.video_std[i])
        margins = [(states[i] @ text - null.second_mean[i]) / null.second_std[i],
                   (states[i] @ text - null.caption_mean[i]) / null.caption_std[i]]
        np.testing.assert_allclose(hit.per_second_z, np.minimum(*margins))  # stands out only past both
    with pytest.raises(ValueError, match="baseline covers 4 videos, the search 3"):
        viz.rank_videos(text, videos[:3], states[:3], ["a", "b", "c"], null=null)


def test_query_captions_keep_the_query_s_own_step():
    captions = [(0, 5, "chop the onion a little"), (5, 9, "fry the onion"), (9, 12, "chop the garlic")]
    assert viz.query_captions("chop the onion", captions) == [captions[0]]
    assert viz.query_captions("Onion", captions) == captions[:2]
    assert viz.query_captions("asdf qwerty", captions) == []


def test_explorer_searches_and_renders():
    pytest.importorskip("ipywidgets")
    calls = []

    def search(query, k):
        calls.append((query, k))
        return [viz.RankedVideo(f"video_{i}", 10.0 - i, np.arange(12.0) * (i + 1)) for i in range(k)]

    explorer = viz.Explorer(search, initial_query="cut the onion", k=2)
    assert calls == [("cut the onion", 2)]
    assert "video_0" in explorer.table.value and "video_1" in explorer.table.value
    explorer.k.value = 3  # moving the slider searches again
    assert calls[-1] == ("cut the onion", 3)
    explorer.query.value = "fry the egg"  # what typing + Enter does
    assert calls[-1] == ("fry the egg", 3)
    assert explorer.table.value.count("<tr>") == 4  # header + 3 hits
    assert explorer.plot.value[:8] == b"\x89PNG\r\n\x1a\n"
    fig = viz.ranked_videos_figure(explorer.last, "fry the egg")
    assert len(fig.axes) == 3


@pytest.mark.slow
def test_a_nonsense_query_scores_below_real_ones_after_pre_training(synthetic_world, tmp_path):
    """Calibrated against nonsense captions, real step names beat strings of random letters on the world."""
    import torch

    from vclip.checkpoint import load_model
    from vclip.data.formats import load_features
    from vclip.data.truth import load_truth
    from vclip.inference import VideoCLIPPipeline
    from vclip.notebooks import teaching_run
    from vclip.tasks.retrieval import read_youcook_csv

    torch.manual_seed(0)
    run = teaching_run(synthetic_world, tmp_path, name="calibration", preset="tiny", steps=128, seed=0)
    youcook = synthetic_world / "youcook2"
    clips = read_youcook_csv(youcook / "validation_youcook.csv")
    ids = list(dict.fromkeys(c.video_id for c in clips))
    feats = [load_features(youcook / "features" / f"{v}.npy") for v in ids]
    search = viz.model_search(VideoCLIPPipeline(load_model(run).eval(), device="cpu"), ids, feats)
    truth = load_truth(youcook)
    shown = sorted({s for v in ids for s in truth.seconds(v).tolist() if s >= 0})
    rng = np.random.default_rng(0)
    real = [truth.steps[s] for s in rng.choice(shown, 30, replace=False)]
    letters = list("abcdefghijklmnopqrstuvwxyz")
    nonsense = [" ".join("".join(rng.choice(letters, 5)) for _ in range(2)) for _ in range(30)]
    real_z = np.array([search(q, 1)[0].z for q in real])
    nonsense_z = np.array([search(q, 1)[0].z for q in nonsense])
    assert np.median(real_z) > np.median(nonsense_z) + 0.5, (np.median(real_z), np.median(nonsense_z))
    assert np.mean(real_z[:, None] > nonsense_z[None, :]) > 0.7  # most real queries beat most nonsense ones


@pytest.mark.slow
def test_model_helpers_on_the_synthetic_world(synthetic_world):
    """The single-video helpers reproduce what the evaluation computes, on an untrained tiny model."""
    import torch

    from vclip.data.formats import load_features
    from vclip.inference import VideoCLIPPipeline
    from vclip.model import VideoCLIP
    from vclip.tasks.retrieval import read_youcook_csv

    torch.manual_seed(0)
    model = VideoCLIP.from_preset("tiny").eval()
    sim, texts, video_ids = viz.retrieval_similarity(model, synthetic_world / "youcook2", limit=6)
    assert sim.shape == (6, 6) and len(texts) == len(video_ids) == 6

    ex = viz.crosstask_example(model, synthetic_world / "crosstask", index=0)
    t_len, k = ex.scores.shape
    assert ex.ground_truth.shape == (t_len, k) and len(ex.steps) == k
    assert np.all(np.diff(ex.predicted) > 0)  # one second per step, in the task's order
    np.testing.assert_allclose(np.exp(ex.scores).sum(axis=1), 1.0, rtol=1e-6)  # log-softmax over steps

    assert ex.task_title and not ex.task_title.isdigit()  # the task's name, not its id

    seg = viz.coin_example(model, synthetic_world / "coin", index=0)
    assert seg.target.shape == seg.predicted.shape
    assert set(np.unique(seg.predicted)) <= {0} | set(seg.label_names)
    from vclip.tasks.coin import predict_labels

    np.testing.assert_array_equal(predict_labels(seg.scores, seg.threshold), seg.predicted)
    informative = viz.coin_example(model, synthetic_world / "coin")  # default: the most annotated video
    assert (informative.target > 0).sum() >= (seg.target > 0).sum() and (informative.target > 0).any()

    clips = read_youcook_csv(synthetic_world / "youcook2" / "validation_youcook.csv")
    ids = list(dict.fromkeys(c.video_id for c in clips))[:5]
    feats = [load_features(synthetic_world / "youcook2" / "features" / f"{v}.npy") for v in ids]
    search = viz.model_search(VideoCLIPPipeline(model, device="cpu"), ids, feats)
    hits = search(clips[0].text, 5)
    assert all(np.isfinite(h.z) and h.per_second_z.shape == h.per_second.shape for h in hits)
    assert sorted(h.video_id for h in hits) == sorted(ids)
    assert [len(h.per_second) for h in hits] == [len(feats[ids.index(h.video_id)]) for h in hits]
    assert hits[0].score >= hits[-1].score


def test_clip_alignment_figure_draws_truth_bands_and_the_unread_tail():
    truth = np.array([-1] * 10 + [3] * 20 + [-1] * 30 + [3] * 5)
    pairs = [{"text": (12.0, 20.5), "step": 3, "overlap": (14, 30), "exact": (12, 60)},
             {"text": (40.0, 45.0), "step": -1, "overlap": (38, 41), "exact": (40, 45)}]
    fig = viz.clip_alignment_figure(truth, pairs, step_names=["a", "b", "c", "stir the paint"], max_video_len=32)
    ax = fig.axes[0]
    bands = [p for p in ax.patches if p.get_facecolor()[:3] == pytest.approx((0.75, 0.9, 0.72))]
    assert [(b.get_x(), b.get_width()) for b in bands] == [(10, 20), (60, 5)]  # only the narrated step's seconds
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert [(h.get_x(), h.get_width()) for h in hatched] == [(44, 16)]  # 12 + 32 = 44 .. 60 is not read
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "text 0: \u201cstir the paint\u201d" and labels[3] == "text 1: \u201cno step\u201d"
    with pytest.raises(ValueError, match="at least one"):
        viz.clip_alignment_figure(truth, [])


def test_shading_against_truth_counts_recall_and_precision():
    z = np.array([0.0, 2.5, 3.0, 0.1, 2.2, 0.0])  # seconds 1, 2 and 4 stand out
    hit = viz.RankedVideo("v", 1.0, np.zeros(6), captions=[(1.0, 3.0, "chop the onion"), (5.0, 6.0, "chop the onion")],
                          z=3.0, per_second_z=z)
    recall, precision = viz.shading_against_truth(hit)
    assert recall == pytest.approx(2 / 3) and precision == pytest.approx(2 / 3)  # step seconds 1, 2, 5
    quiet = viz.RankedVideo("v", 1.0, np.zeros(6), captions=[], z=0.0, per_second_z=np.zeros(6))
    assert all(np.isnan(viz.shading_against_truth(quiet)))
    with pytest.raises(ValueError, match="no calibrated"):
        viz.shading_against_truth(viz.RankedVideo("v", 1.0, np.zeros(6)))


def test_hits_table_says_when_runs_are_cut():
    """The explorer's table lists four runs of standing-out seconds and says how many seconds there are in all."""
    z = np.array([3.0, 0.0] * 6)  # six one-second runs: 0, 2, 4, 6, 8, 10
    hit = viz.RankedVideo("v", 1.0, np.zeros(12), [], z=2.0, per_second_z=z)
    table = viz._hits_html([hit])
    assert "0-1s, 2-3s, 4-5s, 6-7s, ... (6 s in all)" in table
    short = viz.RankedVideo("w", 1.0, np.zeros(4), [], z=2.0, per_second_z=np.array([3.0, 0.0, 3.0, 0.0]))
    assert "in all" not in viz._hits_html([short])


@pytest.mark.slow
def test_coin_labelled_index_picks_the_most_rightly_labelled_video(synthetic_world):
    import torch

    from vclip.model import VideoCLIP
    from vclip.tasks import load_task_data
    from vclip.tasks.coin import predict_videos
    from vclip.tasks.common import EvalConfig

    torch.manual_seed(0)
    model = VideoCLIP.from_preset("tiny").eval()
    index = viz.coin_labelled_index(model, synthetic_world / "coin")
    data = load_task_data("coin", synthetic_world / "coin", EvalConfig(progress=False))
    predictions, _ = predict_videos(model, data, EvalConfig(progress=False))
    right = [int(((predictions[v] > 0) & (predictions[v] == data.targets[v])).sum()) for v in data.video_ids]
    example = viz.coin_example(model, synthetic_world / "coin", index=index)
    assert example.video_id == data.video_ids[index] and right[index] == max(right)
    assert int(((example.predicted > 0) & (example.predicted == example.target)).sum()) == max(right)


def test_coin_head_example_segments_as_the_evaluation_does(synthetic_world):
    """The fine-tuned strip of one video: the head's argmax per second, pooled over every testing video it
    gives the frame accuracy COIN's fine-tuning hook (vclip.tasks.coin.CoinFinetuning.evaluate) reports."""
    import torch

    from vclip.metrics import coin_frame_accuracy
    from vclip.model import VideoCLIP
    from vclip.tasks import TASKS, load_task_data
    from vclip.tasks.common import EvalConfig
    from vclip.tasks.heads import SegmentationHead

    torch.manual_seed(0)
    model = VideoCLIP.from_preset("tiny").eval()
    folder = synthetic_world / "coin"
    data = load_task_data("coin", folder, EvalConfig(progress=False))
    head = SegmentationHead(model.config.hidden_size, len(data.labels))
    examples = [viz.coin_head_example(model, head, folder, v) for v in data.video_ids]
    first = examples[0]
    assert first.predicted.shape == first.target.shape and np.array_equal(first.predicted, first.scores.argmax(1))
    assert first.scores.shape[1] == len(data.labels) + 1 and np.isnan(first.threshold)
    pooled = coin_frame_accuracy([e.predicted for e in examples], [e.target for e in examples])
    reported = TASKS["coin"].finetuning.evaluate(model, head, folder, EvalConfig(progress=False)).metrics
    assert pooled["frame_acc"] == pytest.approx(reported["frame_acc"])
    with pytest.raises(ValueError, match="not one of the"):
        viz.coin_head_example(model, head, folder, "no-such-video")


def test_paired_differences_figure_labels_never_overlap():
    views = ("youcook2", "youcook2_within_video", "youcook2_same_step", "msrvtt")
    by_view = {"no_retrieval": [(2.4, 4.9), (0.6, 7.1), (6.1, 4.6), (-2.5, 1.7)],
               "exact": [(11.7, 3.3), (8.6, 4.8), (15.0, 3.0), (3.3, 2.1)]}
    by_step = {"no_retrieval": [(2.9, 2.0), (2.0, 4.4), (2.4, 4.9)], "exact": [(3.1, 3.3), (8.0, 4.0), (11.7, 3.3)]}
    fig = viz.paired_differences_figure(by_view, views, by_step, [50, 100, 150], title="t")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [label.get_window_extent(renderer) for label in fig.axes[0].get_xticklabels()]
    assert len(boxes) == len(views)
    assert all(a.x1 <= b.x0 for a, b in zip(boxes, boxes[1:])), "tick labels of the views overlap"
    assert [text.get_text() for text in fig.legends[0].get_texts()] == ["paper - no_retrieval", "paper - exact"]
    plt.close(fig)
