"""The knob widgets (vclip.knobs): the numbers of one knob setting against direct computations from the world's
truth and vclip.loss, and the explorer's callback (a slider moved, the view and the Output widget redrawn)."""

from __future__ import annotations

import base64
import dataclasses
import math

import numpy as np
import pytest
import torch

SMALL = dict(group_size=16, num_candidates=16, videos_per_group=4, seed=3, num_groups=2)


@pytest.fixture(scope="module")
def small_world(synthetic_world):
    """The default world's first 96 training videos (the vectors and groups stay fast)."""
    from vclip.knobs import KnobWorld

    world = KnobWorld.load(synthetic_world)
    return dataclasses.replace(world, video_ids=world.video_ids[:96])


@pytest.fixture(scope="module")
def tiny_model():
    from vclip.model import VideoCLIP

    torch.manual_seed(0)
    return VideoCLIP.from_preset("tiny").eval()


@pytest.fixture(scope="module")
def vectors(small_world, tiny_model):
    from vclip.knobs import world_vectors

    return world_vectors(small_world, tiny_model, seed=SMALL["seed"])


def _redrawn_group(world, positions, clips, seed):
    """The group's clip pairs drawn again from scratch, as knob_view documents them: video at position p
    draws its first ``clips`` pairs from default_rng([seed, p])."""
    from vclip.sampling import sample_clip_pairs

    feats, pairs = [], []
    for p in positions:
        video = world.video_ids[p]
        feat = np.asarray(world.store.features(video))
        starts, ends, tokens = world.store.captions(video)
        pairs.append(sample_clip_pairs(len(feat), starts, ends, tokens, clips, np.random.default_rng([seed, p]),
                                       world.sampling))
        feats.append(feat)
    return feats, pairs


def test_the_loss_of_a_view_is_vclip_loss_on_the_same_group(small_world, tiny_model, vectors):
    from vclip.knobs import knob_view
    from vclip.loss import contrastive_loss
    from vclip.sampling import collate_pairs

    view = knob_view(small_world, tiny_model, temperature=0.5, vectors=vectors, **SMALL)
    assert view.clips_per_video == 4 and view.group_size == 16
    for kind in view.kinds().values():
        assert len(kind.losses) == SMALL["num_groups"]
        for group, loss in zip(kind.groups, kind.losses):
            feats, pairs = _redrawn_group(small_world, group, view.clips_per_video, SMALL["seed"])
            batch = collate_pairs(feats, pairs, small_world.sampling.max_video_len)
            with torch.no_grad():
                out = tiny_model(batch.vfeats, batch.vmask, batch.input_ids, batch.attention_mask)
            direct = contrastive_loss(out.pooled_video, out.pooled_text, temperature=0.5).item()
            # the pairs were encoded in another batch (other padding): equal within float32 sums
            assert math.isclose(loss, direct, rel_tol=1e-4), (kind.kind, loss, direct)
        assert math.isclose(kind.loss, float(np.mean(kind.losses)))


def test_false_negatives_and_same_task_shares_are_the_counts_from_the_truth(small_world, tiny_model, vectors):
    from vclip.knobs import knob_view

    view = knob_view(small_world, tiny_model, vectors=vectors, **SMALL)
    truth, raw = small_world.truth, small_world.raw_captions
    for kind in view.kinds().values():
        for g, (group, percent) in enumerate(zip(kind.groups, kind.false_negative_percents)):
            feats, pairs = _redrawn_group(small_world, group, view.clips_per_video, SMALL["seed"])
            text_steps, shown = [], []
            for p, video_pairs in zip(group, pairs):
                video = small_world.video_ids[p]
                starts, ends, _ = small_world.store.captions(video)
                lines = raw[video]
                for pair in video_pairs:  # the raw caption lines said inside the text clip, by majority of steps
                    t0, t1 = float(starts[pair.text_first]), float(ends[pair.text_last])
                    # the store keeps times as float32: compare the raw lines' times in float32 too
                    said = [s for a, b, s in zip(lines["start"], lines["end"], truth.caption_steps[video])
                            if np.float32(a) >= np.float32(t0) and np.float32(b) <= np.float32(t1) and s >= 0]
                    text_steps.append(max(sorted(set(said)), key=said.count) if said else -1)
                    read = truth.seconds(video)[pair.video_start:min(pair.video_end, pair.video_start + 32)]
                    read = [s for s in read.tolist() if s >= 0]
                    shown.append(max(sorted(set(read)), key=read.count) if read else -1)
            count = sum(1 for i in range(16) for j in range(16)
                        if i != j and text_steps[i] >= 0 and shown[j] == text_steps[i])
            assert percent == pytest.approx(100.0 * count / (16 * 15)), (kind.kind, g)
            if g == 0:
                assert int(kind.false_negative.sum()) == count
                assert not kind.false_negative.diagonal().any()
        pairs_same = [truth.video_tasks[small_world.video_ids[a]] == truth.video_tasks[small_world.video_ids[b]]
                      for group in kind.groups for i, a in enumerate(group) for b in group[i + 1:]]
        assert kind.same_task_percent == pytest.approx(100.0 * sum(pairs_same) / len(pairs_same))
        assert kind.tasks == [truth.video_tasks[small_world.video_ids[p]] for p in kind.groups[0]]
    assert len(view.random.groups) == len(view.retrieved.groups) == 96 // 4


def test_temperature_scales_the_logits_and_only_the_logits(small_world, tiny_model, vectors):
    from vclip.knobs import knob_view

    one = knob_view(small_world, tiny_model, temperature=1.0, vectors=vectors, **SMALL)
    tenth = knob_view(small_world, tiny_model, temperature=0.1, vectors=vectors, **SMALL)
    np.testing.assert_allclose(tenth.retrieved.similarity * 0.1, one.retrieved.similarity, rtol=1e-5, atol=1e-5)
    assert tenth.retrieved.groups == one.retrieved.groups
    assert tenth.random.false_negative_percents == one.random.false_negative_percents
    assert tenth.random.loss != pytest.approx(one.random.loss, rel=1e-3)
    normalised = knob_view(small_world, tiny_model, temperature=1.0, normalize=True, vectors=vectors, **SMALL)
    assert np.abs(normalised.random.similarity).max() <= 1.0 + 1e-5  # cosines
    assert one.equal_logits_loss == pytest.approx(2 * math.log(16))
    lines = one.lines()
    assert lines[0].startswith("tau 1, B = 16 pairs = 4 videos x 4 clips, k = 16 candidates")
    assert lines[1].startswith("random groups:") and lines[2].startswith("retrieved groups:")


def test_fewer_candidates_than_videos_tops_groups_up_and_says_so(small_world, tiny_model, vectors):
    from vclip.knobs import knob_view

    view = knob_view(small_world, tiny_model, group_size=16, num_candidates=2, videos_per_group=4, seed=3,
                     num_groups=1, vectors=vectors)
    assert view.retrieved.topped_up_groups == len(view.retrieved.groups)
    assert "topped up with random videos" in view.lines()[2]


@pytest.mark.parametrize("knobs, message", [
    (dict(group_size=12, videos_per_group=8), "multiple of videos_per_group"),
    (dict(temperature=0.0), "temperature must be > 0"),
    (dict(num_candidates=0), "num_candidates must be >= 1"),
    (dict(num_groups=40), "num_groups must be in [1, 24]"),
])
def test_bad_knobs_are_refused_in_one_line(small_world, tiny_model, vectors, knobs, message):
    from vclip.knobs import knob_view

    settings = {**SMALL, **knobs}
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        knob_view(small_world, tiny_model, vectors=vectors, **settings)


def test_the_figure_marks_every_false_negative(small_world, tiny_model, vectors):
    import matplotlib.pyplot as plt

    from vclip.knobs import knob_figure, knob_view

    view = knob_view(small_world, tiny_model, vectors=vectors, **SMALL)
    fig = view.figure()
    panels = [ax for ax in fig.axes if ax.images and ax.get_xlabel().startswith("video clip")]
    assert len(panels) == 2
    for ax, kind in zip(panels, view.kinds().values()):
        marks = ax.collections[0].get_offsets()
        assert len(marks) == int(kind.false_negative.sum())
        assert ax.get_title().startswith(f"{kind.kind} group 0")
    plt.close(fig)
    with pytest.raises(ValueError, match="square"):
        knob_figure([np.zeros((4, 3))], [np.zeros((4, 3), bool)], [np.zeros(4)], ["t"])


def _png(explorer) -> bytes:
    data = [o for o in explorer.output.outputs if o["output_type"] == "display_data"]
    assert len(data) == 1
    return base64.b64decode(data[0]["data"]["image/png"])


def test_moving_a_slider_recomputes_the_view_and_redraws_the_output(small_world, tiny_model):
    from vclip.knobs import KnobExplorer

    explorer = KnobExplorer(small_world, tiny_model, seed=3, num_groups=1, group_size=16, videos_per_group=4,
                            num_candidates=16)
    first, first_png = explorer.view, _png(explorer)
    assert first.group_size == 16 and first_png.startswith(b"\x89PNG")
    assert explorer.output.outputs[0]["text"].startswith("tau 1, B = 16 pairs")

    explorer.sliders["group_size"].value = 32  # the observer fires, as a student's move does
    moved = explorer.view
    assert moved is not first and moved.group_size == 32 and moved.clips_per_video == 8
    assert moved.random.loss != pytest.approx(first.random.loss, rel=1e-3)
    assert explorer.output.outputs[0]["text"].startswith("tau 1, B = 32 pairs")
    assert _png(explorer) != first_png

    explorer.sliders["temperature"].value = 0.1
    assert explorer.view.temperature == pytest.approx(0.1) and explorer.view.group_size == 32

    explorer.sliders["videos_per_group"].value = 32  # V = 32 with B = 32: one clip per video
    explorer.update(group_size=8)  # from code: V above B is lowered to B and its slider follows
    assert explorer.view.videos_per_group == 8 and explorer.sliders["videos_per_group"].value == 8
    assert explorer.view.clips_per_video == 1
    with pytest.raises(ValueError, match="unknown knobs"):
        explorer.update(batch=4)


def test_a_folder_without_the_worlds_truth_is_refused_in_one_line(tmp_path):
    from vclip.knobs import KnobWorld

    with pytest.raises(FileNotFoundError, match="no latent truth here") as error:
        KnobWorld.load(tmp_path)
    assert "\n" not in str(error.value)
