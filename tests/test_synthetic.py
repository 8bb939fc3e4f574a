"""The synthetic world: layouts, determinism, latent truth, and the properties the paper's ideas need."""

from __future__ import annotations

import filecmp
import json

import numpy as np
import pytest

from vclip.data.formats import read_pretrain_folder
from vclip.data.truth import load_truth
from vclip.synthetic import WORLD_FILE, WorldConfig, generate
from vclip.synthetic.__main__ import main
from vclip.synthetic.generate import FOLDERS
from vclip.synthetic.language import STEPS, TASKS
from vclip.tasks.didemo import read_didemo
from vclip.tasks.qa import read_msrvtt_mc
from vclip.tasks.retrieval import read_youcook_csv


def _small() -> WorldConfig:
    return WorldConfig(pretrain_train=6, pretrain_val=2, youcook_videos=3, msrvtt_clips=4, msrvtt_qa_items=4,
                       crosstask_videos_per_primary=3, crosstask_val_per_primary=1, crosstask_videos_per_related=1,
                       coin_testing=18, coin_training=2, didemo_videos=3)


def _files(root):
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def test_world_json_is_written_last_and_describes_the_world(synthetic_world):
    record = json.loads((synthetic_world / WORLD_FILE).read_text())
    assert record["preset"] == "default" and record["seed"] == 0 and set(record["counts"]) == set(FOLDERS)
    assert record["counts"]["pretrain"]["train"] == 512
    mtime = (synthetic_world / WORLD_FILE).stat().st_mtime
    assert all((synthetic_world / name / "synthetic_truth.json").stat().st_mtime <= mtime for name in FOLDERS)


def test_same_seed_same_bytes_other_seed_other_world(tmp_path):
    generate(tmp_path / "a", seed=5, config=_small())
    generate(tmp_path / "b", seed=5, config=_small())
    generate(tmp_path / "c", seed=6, config=_small())
    files = _files(tmp_path / "a")
    assert files == _files(tmp_path / "b") and len(files) > 60
    _, mismatch, errors = filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", [str(f) for f in files], shallow=False)
    assert not mismatch and not errors
    assert (tmp_path / "a" / "pretrain" / "raw_caption.json").read_text() != \
        (tmp_path / "c" / "pretrain" / "raw_caption.json").read_text()


def test_main_refuses_to_replace_a_complete_world(tmp_path, capsys):
    generate(tmp_path / "w", config=_small())
    assert main(["--out", str(tmp_path / "w")]) == 1
    assert "exists: a complete world is already there" in capsys.readouterr().err
    (tmp_path / "w" / WORLD_FILE).unlink()  # an interrupted run is simply replaced
    generate(tmp_path / "w", config=_small())
    assert (tmp_path / "w" / WORLD_FILE).exists()
    (tmp_path / "real" / "pretrain").mkdir(parents=True)  # someone's data: never deleted
    (tmp_path / "real" / "pretrain" / "train.lst").write_text("abc\n")
    with pytest.raises(FileExistsError, match="was not written by this program"):
        generate(tmp_path / "real", config=_small())
    assert (tmp_path / "real" / "pretrain" / "train.lst").exists()


def test_features_are_unit_float16_and_match_the_truth(synthetic_world):
    for name in FOLDERS:
        truth = load_truth(synthetic_world / name)
        assert truth.folder == name and len(truth.steps) == len(STEPS)
        for video_id in list(truth.video_steps)[:25]:
            features = np.load(synthetic_world / name / "features" / f"{video_id}.npy")
            assert features.dtype == np.float16 and features.shape == (len(truth.video_steps[video_id]), 512)
            np.testing.assert_allclose(np.linalg.norm(features.astype(np.float32), axis=1), 1.0, atol=2e-3)


def test_load_truth_needs_a_synthetic_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no latent truth here"):
        load_truth(tmp_path)


def test_steps_are_shared_across_tasks():
    tasks_of_step = {}
    for task in TASKS:
        for step in set(task.steps):
            tasks_of_step.setdefault(step, set()).add(task.title)
    shared = [s for s, t in tasks_of_step.items() if len(t) >= 3]
    assert len(shared) >= 4  # e.g. "chop the onion", "add the salt", "crack the eggs"
    assert "chop the onion" in {STEPS[s].name for s in shared}


@pytest.fixture(scope="module")
def pretrain(synthetic_world):
    folder = synthetic_world / "pretrain"
    data = read_pretrain_folder(folder)
    truth = load_truth(folder)
    features = {v: np.load(folder / "features" / f"{v}.npy").astype(np.float32) for v in data.train_ids[:200]}
    return data, truth, features


def test_pretraining_videos_have_background_and_lengths(pretrain):
    data, truth, features = pretrain
    labels = np.concatenate([truth.seconds(v) for v in features])
    assert 0.2 < (labels < 0).mean() < 0.5
    lengths = [len(f) for f in features.values()]
    assert 60 <= min(lengths) and max(lengths) <= 240


def test_features_encode_the_step(pretrain):
    """Nearest class mean over held-out videos: far above chance (1 / #steps)."""
    _, truth, features = pretrain
    ids = list(features)
    train, test = ids[:150], ids[150:]
    x = np.concatenate([features[v] for v in train])
    y = np.concatenate([truth.seconds(v) for v in train])
    means = {s: x[y == s].mean(0) for s in np.unique(y) if s >= 0}
    steps = np.array(list(means))
    centroids = np.stack([means[s] for s in steps])
    xt = np.concatenate([features[v] for v in test])
    yt = np.concatenate([truth.seconds(v) for v in test])
    keep = np.isin(yt, steps)
    accuracy = (steps[np.argmax(xt[keep] @ centroids.T, axis=1)] == yt[keep]).mean()
    assert accuracy > 0.5 > 20 / len(STEPS)


def test_videos_of_one_task_look_alike(pretrain):
    """Video-level similarity groups videos by task: what retrieval augmentation finds (hard negatives)."""
    _, truth, features = pretrain
    ids = list(features)
    means = np.stack([features[v].mean(0) for v in ids])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    tasks = np.array([truth.video_tasks[v] for v in ids])
    sim = means @ means.T
    same = tasks[:, None] == tasks[None, :]
    off = ~np.eye(len(ids), dtype=bool)
    assert sim[same & off].mean() > sim[~same].mean() + 0.1


def test_narration_is_offset_from_the_action(pretrain):
    """Exactly aligned seconds often miss the step a caption talks about; a wider window usually finds it."""
    data, truth, features = pretrain
    exact = wide = total = 0
    for video_id in features:
        labels = truth.seconds(video_id)
        captions = data.captions[video_id]
        for start, end, step in zip(captions.start, captions.end, truth.caption_steps[video_id]):
            if step < 0:
                continue
            total += 1
            lo, hi = int(np.floor(start)), int(np.ceil(end))
            exact += bool((labels[lo:hi] == step).any())
            wide += bool((labels[max(0, lo - 12):hi + 12] == step).any())
    assert total > 1000
    assert 0.3 < exact / total < 0.8 and wide / total > exact / total + 0.15


def test_chatter_and_rolling_duplicates(pretrain):
    data, truth, features = pretrain
    steps = [s for v in features for s in truth.caption_steps[v]]
    assert 0.15 < np.mean(np.array(steps) < 0) < 0.5
    texts = [data.captions[v].text for v in features]
    rolling = sum(any(b.startswith(a) or a.endswith(b) or a.split()[-1] == b.split()[0]
                      for a, b in zip(t, t[1:])) for t in texts)
    assert rolling > 0.5 * len(texts)


def test_annotations_describe_their_latent_step(synthetic_world):
    clips = read_youcook_csv(synthetic_world / "youcook2" / "validation_youcook.csv")
    truth = load_truth(synthetic_world / "youcook2")
    assert len(clips) == len(truth.text_steps)
    for clip, step in zip(clips, truth.text_steps):
        assert clip.text.startswith(STEPS[step].verb) and STEPS[step].noun in clip.text
        assert truth.clip_step(clip.video_id, clip.start, clip.end) == step
    items = read_msrvtt_mc(synthetic_world / "msrvtt_qa" / "MSR_MC_test.csv")
    truth = load_truth(synthetic_world / "msrvtt_qa")
    for item, step, candidates in zip(items, truth.text_steps, truth.candidate_steps):
        assert candidates[item.answer] == step and len(set(candidates)) == 5
    queries = read_didemo(synthetic_world / "didemo" / "test_data.json")
    truth = load_truth(synthetic_world / "didemo")
    agree = []
    for query, step, (s, e) in zip(queries, truth.text_steps, truth.moments):
        seconds = truth.seconds(query.video)
        assert len(seconds) <= 30 and (seconds[5 * s:5 * (e + 1)] == step).any()
        assert all(abs(ts - s) <= 1 and abs(te - e) <= 1 for ts, te in query.times)
        agree += [tuple(t) == (s, e) for t in query.times]
    assert 0.6 < np.mean(agree) < 0.95  # annotators mostly agree with the true moment


def test_coin_background_and_labels(synthetic_world):
    truth = load_truth(synthetic_world / "coin")
    record = json.loads((synthetic_world / WORLD_FILE).read_text())["counts"]["coin"]
    assert 0.4 < record["testing_background_fraction"] < 0.7
    assert len(truth.label_steps) == record["labels"] == len(set(truth.label_steps))


@pytest.mark.slow
def test_a_small_contrastive_model_learns_the_world(synthetic_world):
    """A bag-of-words text encoder and an MLP over mean clip features, trained for 150 steps on
    overlapped pairs, retrieves YouCook2-like clips at well over 10x chance R@1."""
    import torch

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    data = read_pretrain_folder(synthetic_world / "pretrain")
    features = {v: np.load(data.feature_path(v)).astype(np.float32) for v in data.train_ids}
    vocab: dict[str, int] = {}
    words = {v: [[vocab.setdefault(w, len(vocab) + 1) for w in t.split()] for t in data.captions[v].text]
             for v in data.train_ids}

    def pair(video_id):
        captions, tokens = data.captions[video_id], words[video_id]
        first = last = int(rng.integers(len(tokens)))
        budget, count = int(rng.integers(8, 65)), len(tokens[first])
        while count < budget and (first > 0 or last < len(tokens) - 1):
            if (rng.random() < 0.5 and last < len(tokens) - 1) or first == 0:
                last += 1
                count += len(tokens[last])
            else:
                first -= 1
                count += len(tokens[first])
        seconds = len(features[video_id])
        low, high = int(np.floor(captions.start[first])), int(np.ceil(captions.end[last]))
        center = min(max(int(rng.integers(low, high + 1)) if low < high else low, 0), seconds - 1)
        half = int(rng.integers(3, 33)) // 2
        clip = features[video_id][max(0, center - half):center + half + 1]
        return sum(tokens[first:last + 1], [])[:61], clip.mean(0)

    text = torch.nn.EmbeddingBag(len(vocab) + 1, 128, mode="mean")
    video = torch.nn.Sequential(torch.nn.Linear(512, 128), torch.nn.GELU(), torch.nn.Linear(128, 128))
    optimizer = torch.optim.Adam([*text.parameters(), *video.parameters()], lr=3e-3)

    def encode_text(token_lists):
        flat = torch.tensor([t for tokens in token_lists for t in tokens] or [0])
        offsets = torch.tensor(np.cumsum([0] + [len(t) for t in token_lists[:-1]]))
        return text(flat, offsets)

    for _step in range(150):
        batch = [pair(v) for v in rng.choice(data.train_ids, 16) for _ in range(8)]
        t = encode_text([b[0] for b in batch])
        v = video(torch.from_numpy(np.stack([b[1] for b in batch])))
        logits, labels = t @ v.T, torch.arange(len(batch))
        loss = torch.nn.functional.cross_entropy(logits, labels) + torch.nn.functional.cross_entropy(logits.T, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    clips = read_youcook_csv(synthetic_world / "youcook2" / "validation_youcook.csv")
    with torch.no_grad():
        t = encode_text([[vocab.get(w, 0) for w in c.text.split()] for c in clips])
        v = video(torch.from_numpy(np.stack([
            np.load(synthetic_world / "youcook2" / "features" / f"{c.video_id}.npy")[int(c.start):int(c.end)][:32]
            .astype(np.float32).mean(0) for c in clips])))
        sim = (t @ v.T).numpy()
    ranks = (sim > np.diag(sim)[:, None]).sum(1)
    assert (ranks < 1).mean() > 10 / len(clips)


def test_domains_hold_hundreds_of_compositional_tasks():
    """Domains -> many (base, variant) tasks; a random pair of tasks rarely coincides, steps are shared."""
    from vclip.synthetic.language import DOMAINS, TASKS_BY_TITLE

    per_domain = {d: sum(t.domain == d for t in TASKS) for d in DOMAINS}
    assert len(TASKS) >= 300 and per_domain["kitchen"] >= 200
    assert all(len(set(t.steps)) == len(t.steps) for t in TASKS)  # a step occurs once per task
    soups = [t for t in TASKS if t.domain == "kitchen" and t.base == TASKS_BY_TITLE["make mushroom soup"].base]
    shared = set.intersection(*(set(t.steps) for t in soups))  # "add the salt" is in every soup
    assert "add the salt" in {STEPS[s].name for s in shared} and len(soups) == 20


def test_world_keeps_a_subset_of_tasks_per_domain(tmp_path):
    config = _small()
    config.tasks_per_domain = 3
    record = generate(tmp_path / "w", config=config)
    assert record["tasks"] == 12
    truth = load_truth(tmp_path / "w" / "pretrain")
    assert len(set(truth.video_tasks.values())) <= 12


def test_youcook2_names_task_and_step_so_the_oracle_is_near_100(synthetic_world):
    from vclip.tasks import evaluate_baselines

    clips = read_youcook_csv(synthetic_world / "youcook2" / "validation_youcook.csv")
    truth = load_truth(synthetic_world / "youcook2")
    assert len(truth.text_tasks) == len(clips)
    for clip, task in zip(clips, truth.text_tasks):
        assert clip.text.endswith(f" to {task}") and truth.video_tasks[clip.video_id] == task
    evaluated = {clip.video_id for clip in clips}  # the truth also holds the fine-tuning training videos
    assert len({truth.video_tasks[v] for v in evaluated}) == len(evaluated)  # one task per evaluation video
    base = evaluate_baselines("youcook2", synthetic_world)
    assert base["oracle"].metrics["R@1"] > 95 > 10 * base["chance"].metrics["R@1"]


def test_didemo_moment_lengths_follow_the_real_distribution(synthetic_world):
    """Real DiDeMo (test and val): 72% of annotated moments are one 5-second chunk, 22% two, 4% three."""
    queries = read_didemo(synthetic_world / "didemo" / "test_data.json")
    lengths = np.array([e - s + 1 for q in queries for s, e in q.times])
    shares = [100 * np.mean(lengths == n) for n in (1, 2, 3)]
    assert abs(shares[0] - 72) < 4 and abs(shares[1] - 22) < 4 and abs(shares[2] - 4) < 3, shares


@pytest.mark.parametrize("name", ["didemo_test.json", "didemo_val.json"])
def test_the_didemo_reader_parses_the_real_files(name, real_annotations):
    """The kit's reader on the real DiDeMo files; their moment lengths are the ones the world copies."""
    queries = read_didemo(real_annotations / name)
    assert len(queries) > 4000 and all(q.video and q.description and q.times for q in queries)
    lengths = np.array([e - s + 1 for q in queries for s, e in q.times])
    assert abs(100 * np.mean(lengths == 1) - 72) < 2 and abs(100 * np.mean(lengths == 2) - 22) < 2


def test_measure_containment_and_group_shares(synthetic_world):
    """Ground-truth measurements behind notebook 03: same-task shares, false negatives, containment."""
    from vclip.data.store import open_pretrain
    from vclip.sampling import SamplingConfig
    from vclip.synthetic.measure import (
        containment,
        false_negative_share,
        random_pair_same_task,
        same_task_share,
        sample_truth_pairs,
    )

    assert same_task_share([[0, 1, 2]], ["a", "a", "b"]) == pytest.approx(100 / 3)
    assert random_pair_same_task(["a", "a", "b", "b"]) == pytest.approx(100 * 4 / 12)
    store, train, _ = open_pretrain(synthetic_world / "pretrain")
    truth = load_truth(synthetic_world / "pretrain")
    raw = json.loads((synthetic_world / "pretrain" / "raw_caption.json").read_text())
    exact = sample_truth_pairs(store, truth, raw, train[:40], 4, np.random.default_rng(0), SamplingConfig(alignment="exact"))
    assert len(exact) == 160 and all(len(p.seconds) > 0 for p in exact)
    seconds = containment(exact)
    assert 0 < seconds.mean() and (seconds >= 0).all() and len(seconds) <= 160
    share = false_negative_share(exact[:32])
    assert 0 <= share["other_video"] <= share["all"] <= share["same_video"] <= 100
