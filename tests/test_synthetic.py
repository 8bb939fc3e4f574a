"""The synthetic world: layouts, determinism, latent truth, and the properties the paper's ideas need."""

from __future__ import annotations

import filecmp
import json

import numpy as np
import pytest

from vclip.data.formats import read_pretrain_folder
from vclip.synthetic import WORLD_FILE, WorldConfig, generate, load_truth, main
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
