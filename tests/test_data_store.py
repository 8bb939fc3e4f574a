"""The sharded feature store (spec 7.2) and the folder-backed reader with the same interface."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from vclip.data.__main__ import main as data_main
from vclip.data.store import TEXT_PREFIX, FeatureStore, FolderStore, build_store, open_pretrain


@pytest.fixture(scope="module")
def folder_store(synthetic_world):
    return FolderStore(synthetic_world / "pretrain")


@pytest.fixture(scope="module")
def built_store(synthetic_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("store") / "store"
    info = build_store(synthetic_world / "pretrain", out, shard_size=100, progress=False)
    return out, info


def test_store_files_follow_the_reference_layout(built_store):
    out, info = built_store
    assert info["totals"]["train"]["videos"] == 512 and info["totals"]["train"]["shards"] == 6
    meta = json.loads((out / "train_meta.json").read_text())
    assert [len(meta[str(k)]) for k in range(6)] == [100] * 5 + [12]
    data = np.load(out / "train_0_data.npy", mmap_mode="r")
    starts = np.load(out / "train_0_starts.npy")
    assert data.dtype == np.float16 and data.shape[1] == 512
    assert starts.dtype == np.int64 and len(starts) == 101 and starts[0] == 0 and starts[-1] == len(data)
    startends = np.load(out / f"{TEXT_PREFIX}train_0.startends_data.npy")
    caps = np.load(out / f"{TEXT_PREFIX}train_0.caps_ids_data.npy")
    text_starts = np.load(out / f"{TEXT_PREFIX}train_0.caps_ids_starts.npy")
    assert startends.dtype == np.float32 and startends.shape[1] == 2
    assert caps.dtype == np.int32 and caps.shape == (len(startends), 32)
    assert text_starts[-1] == len(caps) and (caps[:, 0] >= 0).all()
    padded = caps == -1  # -1 only as right padding
    assert not (padded[:, :-1] & ~padded[:, 1:]).any()


def test_store_and_folder_reader_agree(built_store, folder_store):
    store = FeatureStore(built_store[0])
    assert store.video_ids == folder_store.video_ids and len(store) == 576
    assert store.split_ids("train") == folder_store.split_ids("train")
    assert store.split_ids("valid") == folder_store.split_ids("val") and len(store.split_ids("test")) == 64
    for video_id in store.video_ids[::37]:
        np.testing.assert_array_equal(store.features(video_id), folder_store.features(video_id))
        assert store.num_seconds(video_id) == folder_store.num_seconds(video_id)
        for a, b in zip(store.captions(video_id), folder_store.captions(video_id)):
            if isinstance(a, np.ndarray):
                np.testing.assert_array_equal(a, b)
            else:
                assert a == b
        starts, ends, tokens = store.captions(video_id)
        assert starts.dtype == np.float32 and len(starts) == len(ends) == len(tokens)
        assert all(1 <= len(t) <= 32 for t in tokens)


def test_store_reads_slices_of_memory_maps(built_store):
    store = FeatureStore(built_store[0])
    video_id = store.video_ids[250]
    features = store.features(video_id)
    assert isinstance(features, np.memmap) and features.shape == (store.num_seconds(video_id), 512)
    clip = store.clip(video_id, 2, 9)
    assert clip.dtype == np.float16 and clip.shape == (7, 512) and not isinstance(clip, np.memmap)
    np.testing.assert_array_equal(clip, features[2:9])
    assert store.clip(video_id, 0, 10_000, dtype=np.float32).shape == features.shape  # end clamped
    assert store.clip(video_id, 0, 3, dtype=np.float32).dtype == np.float32
    with pytest.raises(ValueError, match=r"clip \[5000, 5010\) is outside"):
        store.clip(video_id, 5000, 5010)
    with pytest.raises(KeyError, match="'nope' is not in this data"):
        store.features("nope")
    assert "nope" not in store and video_id in store


def test_open_pretrain_picks_the_reader(built_store, synthetic_world):
    store, train, val = open_pretrain(built_store[0])
    assert isinstance(store, FeatureStore) and len(train) == 512 and len(val) == 64
    store, train, val = open_pretrain(synthetic_world)  # a world root means its pretrain/
    assert isinstance(store, FolderStore) and len(train) == 512


def _bad_folder(synthetic_world, tmp_path):
    """A small copy of the synthetic pre-training folder with one broken video of each kind."""
    source = synthetic_world / "pretrain"
    folder = tmp_path / "pretrain"
    (folder / "features").mkdir(parents=True)
    ids = (source / "train.lst").read_text().split()[:8]
    captions = json.loads((source / "raw_caption.json").read_text())
    for video_id in ids:
        shutil.copy(source / "features" / f"{video_id}.npy", folder / "features")
    nan = np.load(folder / "features" / f"{ids[1]}.npy").astype(np.float32)
    nan[3, 3] = np.nan
    np.save(folder / "features" / f"{ids[1]}.npy", nan)
    np.save(folder / "features" / f"{ids[2]}.npy", np.zeros((20, 1024), np.float16))
    path = folder / "features" / f"{ids[3]}.npy"
    path.write_bytes(path.read_bytes()[:500])
    (folder / "features" / f"{ids[4]}.npy").unlink()
    captions[ids[5]] = {"start": [0.0, 1.0], "end": [1.0, 2.0], "text": ["", None]}
    (folder / "raw_caption.json").write_text(json.dumps({v: captions[v] for v in ids}))
    (folder / "train.lst").write_text("\n".join(ids[:6]) + "\n")
    (folder / "val.lst").write_text("\n".join(ids[6:]) + "\n")
    return folder, ids


def test_bad_videos_are_left_out_and_counted(synthetic_world, tmp_path):
    folder, ids = _bad_folder(synthetic_world, tmp_path)
    expected = {"bad features (values)": [ids[1]], "bad features (shape)": [ids[2]],
                "bad features (data)": [ids[3]], "missing features": [ids[4]], "no usable captions": [ids[5]]}
    reader = FolderStore(folder)
    assert reader.skipped == expected
    assert reader.split_ids("train") == [ids[0]] and reader.split_ids("val") == ids[6:]
    assert reader.caption_drops["empty text"] == 1 and reader.caption_drops["non-string text"] == 1
    with pytest.raises(KeyError, match=r"skipped: missing features"):
        reader.features(ids[4])
    info = build_store(folder, tmp_path / "store", progress=False)
    assert info["skipped"] == expected
    store = FeatureStore(tmp_path / "store")
    assert store.video_ids == [ids[0]] + ids[6:]
    np.testing.assert_array_equal(store.features(ids[6]), reader.features(ids[6]))


def test_build_store_command(synthetic_world, tmp_path, capsys):
    folder, ids = _bad_folder(synthetic_world, tmp_path)
    assert data_main(["build-store", str(folder), "--out", str(tmp_path / "s"), "--shard-size", "2"]) == 0
    output = capsys.readouterr().out
    assert "train: 1 videos, 1 shards" in output and "left out (missing features): 1 videos" in output
    assert data_main(["build-store", str(folder), "--out", str(tmp_path / "s")]) == 1  # exists
    assert data_main(["build-store", str(folder), "--out", str(tmp_path / "s"), "--overwrite"]) == 0
    assert len(FeatureStore(tmp_path / "s")) == 3
