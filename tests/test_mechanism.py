"""The mechanism measurements of vclip.synthetic.measure (containment, false negatives by source, group
hardness), the ``howto`` preset, and the ablation benchmark's reading of WORLD.json."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from vclip.data.truth import load_truth
from vclip.synthetic import generate, world_config
from vclip.synthetic.measure import (
    TruthPair,
    containment,
    false_negatives_by_source,
    group_hardness,
    sample_truth_group,
    sample_truth_pairs,
)

ROOT = Path(__file__).resolve().parents[1]


def _ablations():
    spec = importlib.util.spec_from_file_location("bench_ablations", ROOT / "benchmarks" / "ablations.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pretrain(world):
    from vclip.data.store import open_pretrain

    store, train, _ = open_pretrain(world / "pretrain")
    truth = load_truth(world / "pretrain")
    raw = json.loads((world / "pretrain" / "raw_caption.json").read_text())
    return store, train, truth, raw


def test_containment_counts_only_the_seconds_the_model_reads(synthetic_world):
    """Exact clips are as long as their text clip; the model reads only the first max_video_len seconds
    (collate_pairs), so containment counts at most that many (the old slicing kept the whole span)."""
    from vclip.sampling import SamplingConfig, sample_clip_pairs

    store, train, truth, raw = _pretrain(synthetic_world)
    config = SamplingConfig(alignment="exact", max_video_len=8)
    pairs = sample_truth_pairs(store, truth, raw, train[:30], 4, np.random.default_rng(3), config)
    assert all(1 <= len(p.seconds) <= 8 for p in pairs)
    assert containment(pairs).max() <= 8
    # the same draws, read in full: most exact clips are longer than the 8 seconds read
    rng = np.random.default_rng(3)
    spans = []
    for video_id in train[:30]:
        starts, ends, tokens = store.captions(video_id)
        spans += [p.video_end - p.video_start
                  for p in sample_clip_pairs(len(truth.seconds(video_id)), starts, ends, tokens, 4, rng, config)]
    assert np.mean(np.asarray(spans) > 8) > 0.5
    assert [len(p.seconds) for p in pairs] == [min(s, 8) for s in spans]


def test_truth_group_seconds_are_the_rows_the_model_reads(synthetic_world):
    """sample_truth_group's pairs carry the latent step of exactly the feature rows of its batch."""
    from vclip.sampling import SamplingConfig

    store, train, truth, raw = _pretrain(synthetic_world)
    ids = train[:4]
    batch, pairs = sample_truth_group(store, truth, raw, ids, 3, np.random.default_rng(0),
                                      SamplingConfig(alignment="exact"))
    assert len(pairs) == len(batch) == 12
    for row, pair in enumerate(pairs):
        start, end = int(batch.spans[row, 0]), int(batch.spans[row, 1])
        video_id = ids[int(batch.video_index[row])]
        assert pair.video == int(batch.video_index[row])
        assert int(batch.vmask[row].sum()) == len(pair.seconds)
        np.testing.assert_array_equal(pair.seconds, truth.seconds(video_id)[start:min(end, start + 32)])


def test_false_negatives_by_source_on_a_hand_built_group():
    pairs = [TruthPair(0, 1, np.array([1, 1, 1])),  # video 0 (task A): text about step 1
             TruthPair(0, 2, np.array([1, 1])),  # video 0: its clip shows step 1 -> false negative of text 0
             TruthPair(1, 3, np.array([2, 2, -1])),  # video 1 (task A): shows step 2 -> false negative of text 1
             TruthPair(2, -1, np.array([3, -1, 3]))]  # video 2 (task B): shows step 3 -> of text 2; no step
    shares = false_negatives_by_source(pairs, ["A", "A", "B"])
    assert {k: round(v["negatives_percent"], 6) for k, v in shares.items()} == pytest.approx(
        {"same_video": 100 * 2 / 12, "same_task": 100 * 4 / 12, "other_task": 100 * 6 / 12})
    assert {k: v["false_percent"] for k, v in shares.items()} == pytest.approx(
        {"same_video": 100 / 12, "same_task": 100 / 12, "other_task": 100 / 12})


def test_false_negatives_by_source_agree_with_the_world_truth(synthetic_world):
    """Counted independently from the latent truth of the rows read: text step == clip's majority step."""
    from vclip.sampling import SamplingConfig

    store, train, truth, raw = _pretrain(synthetic_world)
    ids = train[:8]
    batch, pairs = sample_truth_group(store, truth, raw, ids, 4, np.random.default_rng(1), SamplingConfig())
    tasks = [truth.video_tasks[v] for v in ids]
    shares = false_negatives_by_source(pairs, tasks)
    counts = {"same_video": 0, "same_task": 0, "other_task": 0}
    for i, text in enumerate(pairs):
        for j, clip in enumerate(pairs):
            if i == j or text.text_step < 0:
                continue
            start, end = int(batch.spans[j, 0]), int(batch.spans[j, 1])
            shown = truth.clip_step(ids[clip.video], start, min(end, start + 32))
            if shown == text.text_step:
                source = ("same_video" if clip.video == text.video else
                          "same_task" if tasks[clip.video] == tasks[text.video] else "other_task")
                counts[source] += 1
    total = len(pairs) * (len(pairs) - 1)
    assert {k: v["false_percent"] for k, v in shares.items()} == pytest.approx(
        {k: 100 * c / total for k, c in counts.items()})
    assert sum(counts.values()) > 0  # the group has false negatives to count (same-video ones at least)


class _Fixed(torch.nn.Module):
    """pooled video = s * V, pooled text = T for fixed matrices: a model whose loss is known in closed form."""

    def __init__(self, video, text):
        super().__init__()
        self.s = torch.nn.Parameter(torch.tensor(1.0))
        self.video, self.text = video, text

    def forward(self, vfeats, vmask, input_ids, attention_mask):
        return SimpleNamespace(pooled_video=self.s * self.video, pooled_text=self.text)


def _batch(n):
    return SimpleNamespace(vfeats=torch.zeros(n, 1, 1), vmask=torch.ones(n, 1, dtype=torch.bool),
                           input_ids=torch.zeros(n, 1, dtype=torch.long), attention_mask=torch.ones(n, 1, dtype=torch.bool))


def test_group_hardness_of_a_hand_built_group():
    eye = torch.eye(3)
    hard = group_hardness(_Fixed(eye, eye), _batch(3))
    # logits = s I: each direction's CE is log(e + 2) - 1; d(loss)/ds = 2 (e / (e + 2) - 1)
    assert hard["loss"] == pytest.approx(2 * (math.log(math.e + 2) - 1), rel=1e-5)
    assert hard["grad_norm"] == pytest.approx(4 / (math.e + 2), rel=1e-5)
    assert hard["margin"] == pytest.approx(1.0) and hard["hardest_wins_percent"] == 0.0
    # a negative that equals text 0's positive beats nothing (a tie) but leaves no margin; one that is
    # more similar than the positive wins
    text = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [2.0, 0, 0]])
    harder = group_hardness(_Fixed(eye, text), _batch(3))
    assert harder["hardest_wins_percent"] == pytest.approx(100 / 3)
    assert harder["margin"] == pytest.approx((1 + 1 - 2) / 3)
    assert harder["loss"] > hard["loss"]


def test_group_mechanism_measures_random_and_retrieved_groups(synthetic_world):
    from vclip.config import load_recipe
    from vclip.synthetic.measure import group_mechanism

    store, train, truth, raw = _pretrain(synthetic_world)
    cfg = load_recipe("teaching").updated(device="cpu", progress=False)
    torch.manual_seed(0)
    model = cfg.model.build()
    result = group_mechanism(model, store, truth, raw, train[:128], cfg, np.random.default_rng(0), num_groups=3)
    assert set(result) == {"random", "retrieved"}
    for kind in result.values():
        assert kind["groups"] == 3 and kind["loss"] > 0 and kind["grad_norm"] > 0
        assert 0 <= kind["hardest_wins_percent"] <= 100
        assert kind["false_negative_percent"] == pytest.approx(sum(s["false_percent"] for s in kind["false_negatives"].values()))
        assert sum(s["negatives_percent"] for s in kind["false_negatives"].values()) == pytest.approx(100)
        assert 0 <= kind["same_task_percent"] <= kind["same_domain_percent"] <= 100
    assert model.training  # the model's mode is restored


def test_howto_preset_holds_howto100m_regime():
    config = world_config("howto")
    assert config.pretrain_train % 256 == 0 and config.tasks_per_domain is not None
    from vclip.synthetic.world import World

    world = World(0, tasks_per_domain=config.tasks_per_domain)
    kitchen = [t for t in world.tasks if t.domain == "kitchen"]
    assert config.youcook_videos <= len(kitchen)  # one headline video per task: the oracle is near 100
    videos_per_task = config.pretrain_train / len(world.tasks)
    assert 5 <= videos_per_task <= 60 and len(world.tasks) >= 100
    from vclip.synthetic.generate import RECOMMENDED

    epochs = RECOMMENDED["howto"]["steps"] / (config.pretrain_train // 8)
    assert epochs >= 2  # the groups are rebuilt at least once by a trained model


def test_howto_preset_generates_a_headline_set_of_distinct_tasks(tmp_path):
    """The howto preset, shrunk in its pre-training and side sets only: the headline set has one video per
    task (oracle 100), and WORLD.json recommends as many epochs as the full preset."""
    from vclip.tasks import evaluate_baselines

    config = dataclasses.replace(world_config("howto"), pretrain_train=32, pretrain_val=8, msrvtt_clips=6,
                                 msrvtt_qa_items=4, crosstask_videos_per_primary=3, crosstask_val_per_primary=1,
                                 crosstask_videos_per_related=1, coin_testing=12, coin_training=2, didemo_videos=3)
    record = generate(tmp_path / "w", preset="howto", config=config)
    truth = load_truth(tmp_path / "w" / "youcook2")
    database = json.loads((tmp_path / "w" / "youcook2" / "youcookii_annotations_trainval.json").read_text())["database"]
    tasks = [truth.video_tasks[v] for v, entry in database.items() if entry["subset"] == "validation"]
    assert len(tasks) == 40 and len(set(tasks)) == 40
    assert evaluate_baselines("youcook2", tmp_path / "w")["oracle"].metrics["R@1"] > 95
    assert record["recommended"]["steps"] == 3 * 32 // 8 and record["recommended"]["num_candidates"] == 16
    assert json.loads((tmp_path / "w" / "WORLD.json").read_text())["recommended"] == record["recommended"]


def test_ablations_take_training_from_world_json_unless_given():
    ablations = _ablations()
    record = {"recommended": {"steps": 384, "num_candidates": 16}}
    assert ablations.training_overrides(record, None, None) == (
        {"steps": 384, "num_candidates": 16}, {"steps": "WORLD.json", "num_candidates": "WORLD.json"})
    overrides, sources = ablations.training_overrides(record, 100, None)
    assert overrides == {"steps": 100, "num_candidates": 16} and sources["steps"] == "the command line"
    assert ablations.training_overrides({}, None, None) == (
        {}, {"steps": "the teaching recipe", "num_candidates": "the teaching recipe"})


def test_narrated_step_counts_lines_that_end_where_the_float32_clip_ends():
    # the store keeps caption times as float32 (148.56 -> 148.5599976); the raw lines are float64
    from vclip.synthetic.measure import narrated_step

    raw_starts, raw_ends = [85.6, 100.0, 120.0, 140.0, 147.6], [88.5, 110.0, 130.0, 148.56, 148.56]
    raw_steps = [3, 3, 5, 5, 5]
    clip_start, clip_end = np.float32(85.6), np.float32(148.56)
    assert narrated_step(raw_starts, raw_ends, raw_steps, float(clip_start), float(clip_end)) == 5
    assert narrated_step(raw_starts, raw_ends, raw_steps, 85.6, 129.0) == 3  # lines past the end stay out
    assert narrated_step(raw_starts, raw_ends, [-1] * 5, 0.0, 200.0) == -1
