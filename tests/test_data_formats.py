"""Readers of every layout: the real annotation files, the synthetic world, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vclip.data.formats import (
    VideoCaptions,
    clean_captions,
    load_features,
    read_feature_header,
    read_id_list,
    read_pretrain_folder,
    read_raw_caption,
)
from vclip.errors import DataFormatError
from vclip.tasks.coin import read_coin
from vclip.tasks.crosstask import (
    crosstask_split,
    read_crosstask,
    read_crosstask_annotation,
    read_crosstask_tasks,
)
from vclip.tasks.didemo import read_didemo
from vclip.tasks.qa import read_msrvtt_mc
from vclip.tasks.retrieval import read_msrvtt_csv, read_youcook_csv, read_youcook_json

# ------------------------------------------------------------------------------------- real files


def test_real_youcook2_csv_loads_all_rows(real_annotations):
    clips = read_youcook_csv(real_annotations / "youcook2_validation.csv")
    assert len(clips) == 3350
    assert len({c.video_id for c in clips}) == 436
    first = clips[0]
    assert (first.video_id, first.start, first.end, first.task) == ("xHr8X2Wpmno", 47.0, 60.0, "226")
    assert first.text == "pick the ends off the verdalago"
    assert first.clip_id == "xHr8X2Wpmno_0" and clips[1].clip_id == "xHr8X2Wpmno_1"
    assert all(c.end >= c.start >= 0 for c in clips)


def test_real_msrvtt_csv_loads_all_rows(real_annotations):
    clips = read_msrvtt_csv(real_annotations / "msrvtt_jsfusion_test.csv")
    assert len(clips) == 1000
    assert (clips[0].key, clips[0].vid_key, clips[0].video_id) == ("ret0", "msr9770", "video9770")
    assert clips[0].sentence == "a person is connecting something to system"
    assert len({c.video_id for c in clips}) == 1000


# ------------------------------------------------------------------------------------- synthetic


def test_every_synthetic_folder_reads(synthetic_world):
    pretrain = read_pretrain_folder(synthetic_world / "pretrain")
    assert len(pretrain.train_ids) == 512 and len(pretrain.val_ids) == 64
    assert set(pretrain.captions) >= set(pretrain.train_ids + pretrain.val_ids)
    csv_clips = read_youcook_csv(synthetic_world / "youcook2" / "validation_youcook.csv")
    json_clips = read_youcook_json(synthetic_world / "youcook2" / "youcookii_annotations_trainval.json")
    assert [(c.video_id, c.start, c.end, c.text) for c in csv_clips] == \
        [(c.video_id, c.start, c.end, c.text) for c in json_clips]
    assert len(read_msrvtt_csv(synthetic_world / "msrvtt" / "MSRVTT_JSFUSION_test.csv")) == 300
    items = read_msrvtt_mc(synthetic_world / "msrvtt_qa" / "MSR_MC_test.csv")
    assert len(items) == 300 and all(len(i.candidates) == 5 and 0 <= i.answer < 5 for i in items)
    assert all(i.video_id == i.vid_key.replace("msr", "video") for i in items)
    coin = read_coin(synthetic_world / "coin" / "COIN.json")
    assert len(coin.testing()) == 80 and len(coin.labels) > 50
    queries = read_didemo(synthetic_world / "didemo" / "test_data.json")
    assert all(0 <= s <= e <= 5 for q in queries for s, e in q.times)


def test_crosstask_reference_split_leaves_test_videos(synthetic_world):
    release = read_crosstask(synthetic_world / "crosstask")
    assert len(release.primary) == 5 and len(release.related) == 3
    train, test = crosstask_split(release, synthetic_world / "crosstask" / "features")
    for task in release.primary:
        assert len(train[task]) == 30 and len(test[task]) == 12
        assert not set(train[task]) & set(test[task])
    val = {v.video_id for v in release.val_videos}
    assert not val & {v for vids in list(train.values()) + list(test.values()) for v in vids}
    for task in release.related:  # related tasks go entirely to train
        assert task not in test
    # deterministic, as np.random.seed(0) in the reference
    assert crosstask_split(release, synthetic_world / "crosstask" / "features") == (train, test)
    video = release.videos[0]
    segments = release.annotation(video.task_id, video.video_id)
    assert segments and all(1 <= s.step <= len(release.primary[video.task_id].steps) for s in segments)


# ------------------------------------------------------------------------------------- bad input


def _npy(path, array):
    np.save(path, array)
    return path


def test_truncated_npy_names_file_and_sizes(tmp_path):
    path = _npy(tmp_path / "v.npy", np.ones((10, 512), np.float16))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataFormatError, match=r"v\.npy: data: expected .* bytes .*truncated"):
        read_feature_header(path)


def test_corrupt_npy_header(tmp_path):
    path = tmp_path / "v.npy"
    path.write_bytes(b"this is not numpy at all")
    with pytest.raises(DataFormatError, match=r"v\.npy: header: expected a valid \.npy header"):
        load_features(path)


def test_wrong_width_1024_explains_the_layer(tmp_path):
    path = _npy(tmp_path / "v.npy", np.ones((5, 1024), np.float16))
    with pytest.raises(DataFormatError, match=r"shape: expected \(seconds, 512\), found \(5, 1024\).*mixed_5c"):
        load_features(path)


@pytest.mark.parametrize("dtype", [np.float64, np.int32])
def test_wrong_dtype(tmp_path, dtype):
    path = _npy(tmp_path / "v.npy", np.ones((5, 512), dtype))
    with pytest.raises(DataFormatError, match="dtype: expected float16 or float32"):
        load_features(path)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_inf_names_the_second(tmp_path, value):
    array = np.ones((6, 512), np.float32)
    array[4, 7] = value
    path = _npy(tmp_path / "v.npy", array)
    with pytest.raises(DataFormatError, match=r"values: expected finite numbers.*first: second 4"):
        load_features(path)
    assert read_feature_header(path).num_seconds == 6  # the header alone is fine


def test_valid_features_memory_map(tmp_path):
    path = _npy(tmp_path / "v.npy", np.ones((7, 512), np.float16))
    array = load_features(path, mmap=True)
    assert isinstance(array, np.memmap) and array.shape == (7, 512) and array.dtype == np.float16


def test_clean_captions_counts_every_drop():
    captions = VideoCaptions("v", start=[0, 5, 3, 20, 8, 9], end=[2, 4, 6, 25, 12, 11],
                             text=["ok", "end before start", 7, "after the end", "  \n ", "clamped"])
    kept, counts = clean_captions(captions, num_seconds=10)
    assert kept.text == ["ok", "clamped"] and kept.end == [2, 10.0]
    assert counts == {"end before start": 1, "non-string text": 1, "starts after the video ends": 1,
                      "empty text": 1, "end clamped to the video length": 1}


def test_raw_caption_structure_errors(tmp_path):
    path = tmp_path / "raw_caption.json"
    path.write_text(json.dumps({"v1": {"start": [0, 1], "end": [1], "text": ["a", "b"]}}))
    with pytest.raises(DataFormatError, match=r"\['v1'\]: expected start, end and text of equal length"):
        read_raw_caption(path)
    path.write_text(json.dumps({"v1": {"start": [0, "x"], "end": [1, 2], "text": ["a", "b"]}}))
    with pytest.raises(DataFormatError, match=r"\['v1'\]\.start\[1\]: expected a finite number"):
        read_raw_caption(path)
    path.write_text("{not json")
    with pytest.raises(DataFormatError, match="content: expected valid JSON"):
        read_raw_caption(path)


def test_duplicated_ids_name_both_lines(tmp_path):
    path = tmp_path / "train.lst"
    path.write_text("a\nb\n\na\n")
    with pytest.raises(DataFormatError, match=r"train\.lst: line 4: expected unique video ids, found 'a' already on line 1"):
        read_id_list(path)


def test_csv_missing_a_column(tmp_path):
    path = tmp_path / "validation_youcook.csv"
    path.write_text("end,start,text,video_id\n10,2,chop the onion,abc\n")
    with pytest.raises(DataFormatError, match=r"validation_youcook\.csv: header: .*missing task"):
        read_youcook_csv(path)
    path = tmp_path / "MSR_MC_test.csv"
    path.write_text("vid_key,a1,a2,a3,a4,a5,answer\nmsr1,a,b,c,d,e,0\n")  # commas: not tab-separated
    with pytest.raises(DataFormatError, match=r"header: expected columns vid_key, .*tab-separated"):
        read_msrvtt_mc(path)


def test_bad_rows_name_the_line(tmp_path):
    path = tmp_path / "validation_youcook.csv"
    path.write_text("end,start,task,text,video_id\n10,2,1,chop,abc\n3,8,1,chop,abc\n")
    with pytest.raises(DataFormatError, match=r"line 3 start/end: expected 0 <= start <= end, found start=8.0, end=3.0"):
        read_youcook_csv(path)
    path.write_text("end,start,task,text,video_id\n10,2,1,,abc\n")
    with pytest.raises(DataFormatError, match="line 2 text: expected a non-empty string"):
        read_youcook_csv(path)
    path = tmp_path / "MSR_MC_test.csv"
    path.write_text("vid_key\ta1\ta2\ta3\ta4\ta5\tanswer\nmsr1\ta\tb\tc\td\te\t5\n")
    with pytest.raises(DataFormatError, match="answer: expected a 0-based index 0..4"):
        read_msrvtt_mc(path)


def test_crosstask_bad_files(tmp_path):
    tasks = tmp_path / "tasks_primary.txt"
    tasks.write_text("101\nMake Tea\nhttp://x\n3\nboil water,add tea\n\n")
    with pytest.raises(DataFormatError, match="steps of task 101.*expected 3 comma-separated"):
        read_crosstask_tasks(tasks)
    annotation = tmp_path / "101_vid.csv"
    annotation.write_text("1,0.0,4.5\n4,5.0,9.0\n")
    with pytest.raises(DataFormatError, match=r"line 2 step: expected a 1-based step index <= 3"):
        read_crosstask_annotation(annotation, n_steps=3)


def test_coin_label_ids_must_be_contiguous(tmp_path):
    path = tmp_path / "COIN.json"
    database = {"v": {"subset": "testing", "annotation": [
        {"id": "1", "segment": [0.0, 3.0], "label": "a"}, {"id": "3", "segment": [4.0, 6.0], "label": "c"}]}}
    path.write_text(json.dumps({"database": database}))
    with pytest.raises(DataFormatError, match=r"every label id 1..N, found 1 ids missing, e.g. \[2\]"):
        read_coin(path)


def test_didemo_times_must_be_chunks(tmp_path):
    path = tmp_path / "test_data.json"
    path.write_text(json.dumps([{"video": "v.mp4", "description": "a man", "times": [[0, 6]]}]))
    with pytest.raises(DataFormatError, match=r"\[0\]\.times: expected \[s, e\] with 0 <= s <= e <= 5"):
        read_didemo(path)


def test_the_reference_split_list_names_are_read_as_they_are(tmp_path, synthetic_world):
    import shutil



    folder = tmp_path / "how2"
    shutil.copytree(synthetic_world / "pretrain", folder, ignore=shutil.ignore_patterns("features"))
    (folder / "train.lst").rename(folder / "how2_s3d_train.lst")
    (folder / "val.lst").rename(folder / "how2_s3d_val.lst")
    data = read_pretrain_folder(folder)
    expected = read_pretrain_folder(synthetic_world / "pretrain")
    assert data.train_ids == expected.train_ids and data.val_ids == expected.val_ids
    (folder / "train.lst").write_text("x\n")
    with pytest.raises(DataFormatError, match="train list: expected one of train.lst or how2_s3d_train.lst, found both"):
        read_pretrain_folder(folder)
