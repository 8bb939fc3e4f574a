"""Nothing lost, nothing silently wrong: the data tools, extraction and the annotation readers.

``python -m vclip.data build-store`` removes only what a store wrote and never writes outside its
folder; a store is validated where it is opened, so ``check`` and ``vclip.pretrain`` agree; an
extraction folder holds one recipe; repeated annotation rows, unreadable annotation files and
segments past the end of their video are reported, never absorbed. Each program is driven by its
command line: a user's mistake is a non-zero exit and one error line naming the file, never a
traceback. ``docs/reliability.md`` lists each case with its test.
"""

from __future__ import annotations

import csv
import json
import math
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vclip.data.store import STORE_FILE, FeatureStore, build_store, open_pretrain
from vclip.errors import DataFormatError

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "MPLBACKEND": "Agg"}


def run_program(*args, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m <program> args...`` in a fresh interpreter (what a user types)."""
    return subprocess.run([sys.executable, "-m", *map(str, args)], capture_output=True, text=True, env=ENV,
                          cwd=REPO, timeout=timeout)


def error_line(result: subprocess.CompletedProcess, name: str, *phrases: str) -> str:
    """The one stderr line naming ``name`` (a file), after asserting a failed exit without a traceback."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if name in line and "error" in line]
    assert len(lines) == 1, result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]


def check_problem(result: subprocess.CompletedProcess, name: str, *phrases: str) -> str:
    """``vclip.data check``'s one line about ``name``: an ``error:`` line, or a ``FATAL`` problem of its report."""
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stdout + result.stderr
    lines = [line for line in (result.stdout + result.stderr).splitlines()
             if name in line and ("error:" in line or "FATAL" in line)]
    assert len(lines) == 1, result.stdout + result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]


def files_and_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def small_source(world: Path, folder: Path, n_train: int = 5, n_val: int = 1) -> Path:
    """A pre-training folder of a few of the world's videos (features copied, captions of all)."""
    (folder / "features").mkdir(parents=True)
    ids = (world / "pretrain" / "train.lst").read_text().split()[:n_train]
    val = (world / "pretrain" / "val.lst").read_text().split()[:n_val]
    for video_id in ids + val:
        shutil.copy(world / "pretrain" / "features" / f"{video_id}.npy", folder / "features")
    shutil.copy(world / "pretrain" / "raw_caption.json", folder)
    (folder / "train.lst").write_text("\n".join(ids) + "\n")
    (folder / "val.lst").write_text("\n".join(val) + "\n")
    return folder


# --------------------------------------------------------------------------------------------------
# build-store: nothing it did not write is removed or written over


def test_build_store_into_its_own_feature_folder_is_refused_and_loses_nothing(synthetic_world, tmp_path):
    source = small_source(synthetic_world, tmp_path / "src")
    before = files_and_bytes(source)
    result = run_program("vclip.data", "build-store", source, "--out", source / "features", "--overwrite")
    error_line(result, "features", "--out", "apart from the")
    assert files_and_bytes(source) == before  # today: every .npy deleted, an empty store, exit 0


def test_build_store_refuses_an_out_that_contains_or_lies_inside_the_source(synthetic_world, tmp_path):
    source = small_source(synthetic_world, tmp_path / "parent" / "src")
    (tmp_path / "parent" / "mine.npy").write_bytes(b"a user's file")
    before = files_and_bytes(tmp_path / "parent")
    result = run_program("vclip.data", "build-store", source, "--out", tmp_path / "parent", "--overwrite")
    error_line(result, "parent", "a folder containing it")
    result = run_program("vclip.data", "build-store", source, "--out", source / "store")
    error_line(result, "store", "inside it")
    assert files_and_bytes(tmp_path / "parent") == before and not (source / "store").exists()


def test_overwrite_refuses_a_folder_that_is_not_a_store(synthetic_world, tmp_path):
    source = small_source(synthetic_world, tmp_path / "src")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "precious.npy").write_bytes(b"not a store's")
    (out / "train_meta.json").write_text("{}")
    result = run_program("vclip.data", "build-store", source, "--out", out, "--overwrite")
    error_line(result, "mine", "2 entries no store wrote", "nothing was removed")
    assert files_and_bytes(out) == {"precious.npy": b"not a store's", "train_meta.json": b"{}"}


def test_overwrite_removes_only_the_files_the_store_wrote(synthetic_world, tmp_path):
    source = small_source(synthetic_world, tmp_path / "src")
    out = tmp_path / "store"
    assert run_program("vclip.data", "build-store", source, "--out", out, "--shard-size", "2").returncode == 0
    (out / "notes.npy").write_bytes(b"the user's")
    (out / "old_meta.json").write_text("{}")
    result = run_program("vclip.data", "build-store", source, "--out", out, "--overwrite", "--shard-size", "4")
    assert result.returncode == 0, result.stderr
    assert (out / "notes.npy").read_bytes() == b"the user's" and (out / "old_meta.json").read_text() == "{}"
    assert not (out / "train_2_data.npy").exists()  # the old build's third shard went with it
    store, train, val = open_pretrain(out)
    assert len(train) == 5 and len(val) == 1 and store.info["shard_size"] == 4


def test_build_store_never_writes_through_a_link(synthetic_world, tmp_path):
    source = small_source(synthetic_world, tmp_path / "src")
    precious = tmp_path / "elsewhere" / "precious.npy"
    precious.parent.mkdir()
    precious.write_bytes(b"outside the store")
    out = tmp_path / "store"
    out.mkdir()
    (out / "train_0_data.npy").symlink_to(precious)  # named like the first shard
    result = run_program("vclip.data", "build-store", source, "--out", out)
    error_line(result, "store", "no store wrote")
    assert precious.read_bytes() == b"outside the store"  # today: overwritten with the shard
    # a store being rebuilt: a link its STORE.json does not list is refused, never followed
    out = tmp_path / "store2"
    build_store(source, out, shard_size=6, progress=False)
    (out / "train_1_starts.npy").symlink_to(precious)
    with pytest.raises(DataFormatError, match=r"train_1_starts\.npy: file: .* found a symbolic link to"):
        build_store(source, out, shard_size=2, progress=False, overwrite=True)
    assert precious.read_bytes() == b"outside the store"


@pytest.mark.parametrize("size", ["0", "-3"])
def test_shard_size_below_one_is_one_line(synthetic_world, tmp_path, size):
    source = small_source(synthetic_world, tmp_path / "src")
    result = run_program("vclip.data", "build-store", source, "--out", tmp_path / "store", "--shard-size", size)
    error_line(result, "--shard-size", f"got {size}")
    assert not (tmp_path / "store").exists()


def test_build_store_out_a_file_is_one_line(synthetic_world, tmp_path):
    source = small_source(synthetic_world, tmp_path / "src")
    (tmp_path / "out.txt").write_text("keep me")
    for extra in ([], ["--overwrite"]):
        result = run_program("vclip.data", "build-store", source, "--out", tmp_path / "out.txt", *extra)
        error_line(result, "out.txt", "expected a folder", "found a file")
    assert (tmp_path / "out.txt").read_text() == "keep me"


def test_an_interrupted_build_is_refused_when_opened_and_removed_by_overwrite(synthetic_world, tmp_path,
                                                                              monkeypatch):
    import vclip.data.store as store_module

    source = small_source(synthetic_world, tmp_path / "src")
    out = tmp_path / "store"
    calls = []

    def killed(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the user's Ctrl-C in the middle of the first shards
        return np.load(path)

    monkeypatch.setattr(store_module, "load_features", killed)
    with pytest.raises(KeyboardInterrupt):
        build_store(source, out, shard_size=2, progress=False)
    monkeypatch.undo()
    info = json.loads((out / STORE_FILE).read_text())
    assert info["complete"] is False and "train_0_data.npy" in info["files"]
    with pytest.raises(DataFormatError, match=r"STORE\.json: complete: expected a finished build"):
        open_pretrain(out)
    (out / "mine.txt").write_text("kept")
    build_store(source, out, shard_size=2, progress=False, overwrite=True)
    assert len(FeatureStore(out)) == 6 and (out / "mine.txt").read_text() == "kept"


def test_overwrite_removes_only_names_a_store_writes(synthetic_world, tmp_path):
    source = small_source(synthetic_world, tmp_path / "src")
    out = tmp_path / "store"
    build_store(source, out, progress=False)
    (out / "precious.npy").write_bytes(b"mine")
    info = json.loads((out / STORE_FILE).read_text())
    (out / STORE_FILE).write_text(json.dumps({**info, "complete": False, "files": ["precious.npy"]}))
    with pytest.raises(DataFormatError, match=r"files: expected the names of the store's own .*'precious\.npy'"):
        build_store(source, out, progress=False, overwrite=True)
    assert (out / "precious.npy").read_bytes() == b"mine"


# --------------------------------------------------------------------------------------------------
# The store is validated where it is opened: check and pretrain agree


@pytest.fixture(scope="module")
def small_store(synthetic_world, tmp_path_factory):
    root = tmp_path_factory.mktemp("small_store")
    source = small_source(synthetic_world, root / "src")
    build_store(source, root / "store", shard_size=2, progress=False)
    return root / "store"


def _offsets(store: Path, values) -> str:
    np.save(store / "train_1_starts.npy", np.asarray(values, np.int64))
    return "train_1_starts.npy"


def _repeat_an_id(store: Path) -> str:
    meta = json.loads((store / "train_meta.json").read_text())
    meta["1"][1] = meta["0"][0]
    (store / "train_meta.json").write_text(json.dumps(meta))
    return "train_meta.json"


CORRUPTIONS = {  # name -> (corrupt the copy, the message's field and expectation)
    "offsets decrease": (lambda s, a, b: _offsets(s, [0, b + 1, b]), "offsets[2]: expected non-decreasing"),
    "negative offset": (lambda s, a, b: _offsets(s, [0, -3, b]), "offsets[1]: expected non-negative"),
    "last offset past the end": (lambda s, a, b: _offsets(s, [0, a, b + 5]), "offsets[2]: expected offsets within"),
    "meta repeats an id": (lambda s, a, b: _repeat_an_id(s), "shard 1 row 1: expected each video id once"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_check_and_pretrain_refuse_a_damaged_store_with_the_same_line(small_store, tmp_path, case):
    store = tmp_path / "store"
    shutil.copytree(small_store, store)
    starts = np.load(store / "train_1_starts.npy")
    corrupt, expected = CORRUPTIONS[case]
    name = corrupt(store, int(starts[1]), int(starts[2]))
    checked = run_program("vclip.data", "check", store)
    assert checked.returncode == 1 and "Traceback" not in checked.stderr
    (problem,) = [line for line in checked.stdout.splitlines() if "problem: FATAL" in line]
    assert name in problem and expected in problem, problem
    trained = run_program("vclip.pretrain", "--data", store, "--model.preset", "tiny", "--output", tmp_path / "run",
                          "--steps", "1", "--sampling.videos-per-group", "2", "--no-retrieval", "--no-progress")
    line = error_line(trained, name, expected)
    assert line.removeprefix("error: ") == problem.split("problem: FATAL ", 1)[1]  # one validation, one message
    assert not (tmp_path / "run" / "checkpoints").exists()


# --------------------------------------------------------------------------------------------------
# Extraction: one recipe per folder, the manifest first


@pytest.fixture(scope="module")
def two_videos(tmp_path_factory):
    from vclip.video import write_video

    folder = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    for name in ("first", "second"):
        frames = rng.integers(0, 256, size=(1, 6, 8, 3), dtype=np.uint8).repeat(8, 1).repeat(8, 2).repeat(45, 0)
        write_video(folder / f"{name}.mkv", frames, fps=30, codec="ffv1")
    return folder


def test_extraction_killed_then_rerun_with_other_settings_is_refused(two_videos, tmp_path, monkeypatch):
    import vclip.features as extract_module

    out = tmp_path / "features"
    real = extract_module.extract_features
    done = []

    def killed_after_one(*args, **kwargs):
        if done:
            raise KeyboardInterrupt  # killed while the second video runs
        done.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(extract_module, "extract_features", killed_after_one)
    config = extract_module.ExtractConfig(videos=[str(two_videos)], out=str(out), random_init=True, size=32,
                                          progress=False)
    with pytest.raises(KeyboardInterrupt):
        extract_module.extract(config)
    monkeypatch.undo()
    manifest = json.loads((out / "extraction.json").read_text())  # written before the first feature file
    assert manifest["recipe"]["output"] == "video_embedding" and manifest["weights"]["seed"] == 0
    assert len(list(out.glob("*.npy"))) == 1
    for other, setting in ((["--output", "mixed_5c"], "recipe.output"), (["--seed", "1"], "weights.seed")):
        result = run_program("vclip.extract", "--videos", two_videos, "--out", out, "--random-init", "--size", "32",
                             "--no-progress", *other)
        error_line(result, "extraction.json", setting, "choose another --out")
    assert [np.load(p).shape[1] for p in out.glob("*.npy")] == [512]  # no 1024-d file beside the 512-d one
    result = run_program("vclip.extract", "--videos", two_videos, "--out", out, "--random-init", "--size", "32",
                         "--no-progress")  # the same settings finish the folder
    assert result.returncode == 0, result.stderr
    assert sorted(json.loads((out / "extraction.json").read_text())["videos"]) == ["first", "second"]


def test_extraction_refuses_a_folder_of_features_without_a_manifest(two_videos, tmp_path):
    out = tmp_path / "features"
    out.mkdir()
    np.save(out / "first.npy", np.zeros((2, 1024), np.float16))
    result = run_program("vclip.extract", "--videos", two_videos, "--out", out, "--random-init", "--size", "32",
                         "--no-progress")
    error_line(result, "features", "no extraction.json", "choose another --out")
    assert sorted(p.name for p in out.iterdir()) == ["first.npy"]


def _marker_pickle(path: Path, marker: Path) -> None:
    class Payload:
        def __reduce__(self):
            return (Path.write_text, (marker, "ran"))

    path.write_bytes(pickle.dumps({"state_dict": Payload()}))


@pytest.mark.parametrize("kind", ["text file", "pickle", "out is a file"])
def test_extract_bad_weights_or_out_is_one_line(two_videos, tmp_path, kind):
    weights = tmp_path / "s3d_howto100m.pth"
    marker = tmp_path / "ran.txt"
    out = tmp_path / "features"
    if kind == "text file":
        weights.write_text("<html>404 not found</html>\n")
    elif kind == "pickle":
        _marker_pickle(weights, marker)
    else:
        weights = None
        out.write_text("a file")
    args = ["--weights", weights] if weights else ["--random-init"]
    result = run_program("vclip.extract", "--videos", two_videos, "--out", out, *args, "--size", "32", "--no-progress")
    if weights:
        error_line(result, "s3d_howto100m.pth", "expected S3D weights", "found neither" if kind == "text file" else "found a pickle")
        assert not out.exists()  # nothing written before the weights load
    else:
        error_line(result, "features", "expected a folder", "found a file")
    assert not marker.exists()


# --------------------------------------------------------------------------------------------------
# Annotations: repeated rows, unreadable files, NaN times, segments past the end


def task_copy(world: Path, task: str, folder: Path) -> Path:
    """The world's task folder with its annotation files copied and its features linked (read-only)."""
    folder.mkdir(parents=True)
    for entry in (world / task).iterdir():
        if entry.name == "features":
            (folder / "features").symlink_to(entry, target_is_directory=True)
        elif entry.is_dir():
            shutil.copytree(entry, folder / entry.name)
        else:
            shutil.copy(entry, folder / entry.name)
    return folder


def evaluate(folder: Path, task: str) -> subprocess.CompletedProcess:
    return run_program("vclip.evaluate", "--task", task, "--untrained", "tiny", "--data", folder, "--no-progress",
                       "--no-baselines")


def test_youcook2_with_every_row_twice_is_refused_not_scored_zero(synthetic_world, tmp_path):
    folder = task_copy(synthetic_world, "youcook2", tmp_path / "youcook2")
    csv_path = folder / "validation_youcook.csv"
    lines = csv_path.read_text().splitlines(keepends=True)
    csv_path.write_text(lines[0] + "".join(lines[1:]) * 2)
    n = len(lines) - 1
    error_line(evaluate(folder, "youcook2"), "validation_youcook.csv", f"line {n + 2}", "already on line 2",
               f"({n} repeated rows in all)")


def test_msrvtt_with_a_video_twice_is_refused(synthetic_world, tmp_path):
    folder = task_copy(synthetic_world, "msrvtt", tmp_path / "msrvtt")
    path = folder / "MSRVTT_JSFUSION_test.csv"
    rows = list(csv.reader(path.read_text().splitlines()))
    rows.append([f"ret{len(rows)}", rows[1][1], rows[1][2], "another sentence for the same video"])
    path.write_text("\n".join(",".join(row) for row in rows) + "\n")
    error_line(evaluate(folder, "msrvtt"), "MSRVTT_JSFUSION_test.csv", f"line {len(rows)} video_id",
               "unique video_ids", "already on line 2")


@pytest.mark.parametrize("damage", ["latin-1 byte", "caption over the csv field limit", "NaN start", "inf end"])
def test_unreadable_youcook2_csv_is_one_line(synthetic_world, tmp_path, damage):
    folder = task_copy(synthetic_world, "youcook2", tmp_path / "youcook2")
    path = folder / "validation_youcook.csv"
    header, first, *rest = path.read_text().splitlines()
    end, start, task, text, video = first.split(",")
    if damage == "latin-1 byte":
        first = ",".join([end, start, task, "saut\u00e9 the onions", video])
        path.write_bytes("\n".join([header, *rest[:3], first]).encode("latin-1") + b"\n")
        expected = ("line 5", "expected UTF-8 text", "byte 0xe9")
    elif damage == "caption over the csv field limit":
        first = ",".join([end, start, task, '"' + "chop " * 30000 + '"', video])
        path.write_text("\n".join([header, first, *rest]) + "\n")
        expected = ("line 2", f"fields of at most {csv.field_size_limit()} characters")
    else:
        value = "nan" if damage == "NaN start" else "inf"
        first = ",".join([value if damage == "inf end" else end, value if damage == "NaN start" else start,
                          task, text, video])
        path.write_text("\n".join([header, first, *rest]) + "\n")
        expected = ("line 2", "expected a finite number of seconds")
    check_problem(run_program("vclip.data", "check", path), "validation_youcook.csv", *expected)
    error_line(evaluate(folder, "youcook2"), "validation_youcook.csv", *expected)


@pytest.mark.parametrize("damage", ["key twice", "latin-1 byte", "NaN segment"])
def test_bad_json_annotations_are_one_line(synthetic_world, tmp_path, damage):
    folder = task_copy(synthetic_world, "coin", tmp_path / "coin")
    path = folder / "COIN.json"
    text = path.read_text()
    document = json.loads(text)
    video_id, video = next(iter(document["database"].items()))
    if damage == "key twice":  # json.load keeps the last copy without a word
        entry = json.dumps({video_id: video})[1:-1]
        path.write_text(text.replace('"database": {', '"database": {' + entry + ", ", 1))
        expected = (f"key '{video_id}'", "each key once")
    elif damage == "latin-1 byte":
        video["annotation"][0]["label"] = "saut\u00e9 onions"
        path.write_bytes(json.dumps(document, ensure_ascii=False).encode("latin-1"))
        expected = ("expected UTF-8 text", "byte 0xe9")
    else:
        video["annotation"][0]["segment"] = [math.nan, 3.0]
        path.write_text(json.dumps(document))  # json writes NaN, and reads it back as a number
        expected = (f"database['{video_id}'].annotation[0] start/end", "expected finite seconds")
    check_problem(run_program("vclip.data", "check", path), "COIN.json", *expected)
    error_line(evaluate(folder, "coin"), "COIN.json", *expected)


def test_repeated_records_of_the_other_formats_are_refused(synthetic_world, tmp_path):
    from vclip.tasks.didemo import read_didemo
    from vclip.tasks.qa import read_msrvtt_mc
    from vclip.tasks.retrieval import read_msrvtt_train, read_youcook_json

    didemo = tmp_path / "test_data.json"
    records = json.loads((synthetic_world / "didemo" / "test_data.json").read_text())
    didemo.write_text(json.dumps(records + records[:1]))
    with pytest.raises(DataFormatError, match=rf"test_data\.json: \[{len(records)}\]: expected unique records"):
        read_didemo(didemo)
    qa = tmp_path / "MSR_MC_test.csv"
    lines = (synthetic_world / "msrvtt_qa" / "MSR_MC_test.csv").read_text().splitlines()
    qa.write_text("\n".join(lines + lines[1:2]) + "\n")
    with pytest.raises(DataFormatError, match=rf"line {len(lines) + 1} vid_key: expected unique vid_keys"):
        read_msrvtt_mc(qa)
    youcook = tmp_path / "youcookii_annotations_trainval.json"
    document = json.loads((synthetic_world / "youcook2" / "youcookii_annotations_trainval.json").read_text())
    video_id, video = next(iter(document["database"].items()))
    video["annotations"].append(dict(video["annotations"][0]))
    youcook.write_text(json.dumps(document))
    last = len(video["annotations"]) - 1
    with pytest.raises(DataFormatError, match=rf"annotations\[{last}\]: expected unique annotations"):
        read_youcook_json(youcook, video["subset"])
    train_list = tmp_path / "MSRVTT_train.9k.csv"
    lines = (synthetic_world / "msrvtt" / "MSRVTT_train.9k.csv").read_text().splitlines()
    train_list.write_text("\n".join(lines + lines[1:2]) + "\n")
    with pytest.raises(DataFormatError, match=rf"line {len(lines) + 1} video_id: expected unique video ids"):
        read_msrvtt_train(train_list, synthetic_world / "msrvtt" / "MSRVTT_data.json")


def _shift_coin_segments(path: Path, shift: float, every: int = 1) -> int:
    """Move every ``every``-th training segment ``shift`` seconds later; returns how many moved."""
    document = json.loads(path.read_text())
    moved = 0
    for video in document["database"].values():
        if video["subset"] != "training":
            continue
        for index, annotation in enumerate(video["annotation"]):
            if index % every == 0:
                annotation["segment"] = [s + shift for s in annotation["segment"]]
                moved += 1
    path.write_text(json.dumps(document))
    return moved


def test_coin_segments_past_the_end_are_counted_and_all_lost_is_an_error(synthetic_world, tmp_path):
    from vclip.model import VideoCLIP
    from vclip.tasks.training import load_split

    folder = task_copy(synthetic_world, "coin", tmp_path / "coin")
    moved = _shift_coin_segments(folder / "COIN.json", 10_000, every=3)
    train = load_split("coin", folder, "train")
    (note,) = [n for n in train.notes if "start at or after the end" in n]
    assert "COIN.json" in note and " of " in note
    lost = int(note.split(" of ")[0])
    assert 0 < lost <= moved
    _shift_coin_segments(folder / "COIN.json", 10_000)  # now every training segment lies past its video
    VideoCLIP.from_preset("tiny").save_pretrained(tmp_path / "init")
    result = run_program("vclip.finetune", "--task", "coin", "--init", tmp_path / "init", "--data", folder,
                         "--output", tmp_path / "run", "--epochs", "1", "--no-progress")
    error_line(result, "COIN.json", "annotated segments of the train split", "all ")  # today: trains on background
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_youcook2_training_clips_past_the_end_are_counted_and_all_lost_is_an_error(synthetic_world, tmp_path):
    from vclip.tasks.training import load_split

    folder = task_copy(synthetic_world, "youcook2", tmp_path / "youcook2")
    path = folder / "youcookii_annotations_trainval.json"
    document = json.loads(path.read_text())
    training = [v for v in document["database"].values() if v["subset"] == "training"]
    training[0]["annotations"][0]["segment"] = [10_000, 10_010]
    path.write_text(json.dumps(document))
    data = {split: load_split("youcook2", folder, split) for split in ("train", "val")}
    notes = [n for split in data.values() for n in split.notes if "start at or after the end" in n]
    assert len(notes) == 1 and notes[0].startswith("1 of ") and path.name in notes[0]
    for video in training:
        for annotation in video["annotations"]:
            annotation["segment"] = [s + 10_000 for s in annotation["segment"]]
    path.write_text(json.dumps(document))
    with pytest.raises(DataFormatError, match=r"clips of the train split: expected segments that start inside"):
        load_split("youcook2", folder, "train")


def test_crosstask_steps_past_the_end_are_counted(synthetic_world, tmp_path):
    from vclip.tasks.training import load_split

    folder = task_copy(synthetic_world, "crosstask", tmp_path / "crosstask")
    train = load_split("crosstask", folder, "train")
    annotations = folder / "crosstask_release" / "annotations"
    annotation = next(p for p in sorted(annotations.glob("*.csv")) if p.stem.split("_", 1)[1] in train.video_ids)
    annotation.write_text(annotation.read_text() + "1,99999,100000\n")
    train = load_split("crosstask", folder, "train")
    (note,) = [n for n in train.notes if "start at or after the end" in n]
    assert note.startswith("1 of ") and "annotations" in note and annotation.name in note


def test_pretraining_folder_mistakes_are_one_line_in_check_and_pretrain(synthetic_world, tmp_path):
    source = small_source(synthetic_world, tmp_path / "src")
    first = (source / "train.lst").read_text().split()[0]
    captions = source / "raw_caption.json"
    text = captions.read_text()
    entry = json.dumps({first: json.loads(text)[first]})[1:-1]
    captions.write_text("{" + entry + ", " + text[1:])  # the video twice: json.load keeps the last silently
    for result in (run_program("vclip.data", "check", source),
                   run_program("vclip.pretrain", "--data", source, "--model.preset", "tiny", "--output",
                               tmp_path / "run", "--steps", "1", "--no-retrieval", "--no-progress")):
        check_problem(result, "raw_caption.json", f"key '{first}'", "each key once")
    captions.write_text(text)
    (source / "train.lst").write_bytes((source / "train.lst").read_bytes() + b"caf\xe9\n")
    result = run_program("vclip.pretrain", "--data", source, "--model.preset", "tiny", "--output", tmp_path / "run",
                         "--steps", "1", "--no-retrieval", "--no-progress")
    error_line(result, "train.lst", "line 6", "expected UTF-8 text")
    assert not (tmp_path / "run").exists()


def test_a_clip_annotated_twice_is_noted(synthetic_world, tmp_path):
    from vclip.data.store import FeatureFolder
    from vclip.tasks.retrieval import read_youcook_csv, slice_clips

    folder = task_copy(synthetic_world, "youcook2", tmp_path / "youcook2")
    path = folder / "validation_youcook.csv"
    lines = path.read_text().splitlines()
    end, start, task, _, video = lines[1].split(",")
    path.write_text("\n".join(lines + [",".join([end, start, task, "another step in the same seconds", video])]) + "\n")
    records = [(c.video_id, c.start, c.end, c.text) for c in read_youcook_csv(path)]
    data = slice_clips("youcook2", folder, records, FeatureFolder(folder / "features"))
    (note,) = [n for n in data.notes if "share their clip" in n]
    assert note.startswith("2 rows") and video in note


def test_the_reliability_doc_lists_each_test_of_this_file():
    import re

    section = (REPO / "docs" / "reliability.md").read_text().split(
        "## Data tools, extraction and annotations: nothing lost, nothing silently wrong")[1].split("\n## ")[0]
    named = set(re.findall(r"`(test_\w+)`", section))
    defined = {name for name in globals() if name.startswith("test_")} - {"test_the_reliability_doc_lists_each_test_of_this_file"}
    assert named == defined, (named - defined, defined - named)


def test_a_synthetic_truth_that_does_not_match_its_annotations_is_one_line(synthetic_world, tmp_path):
    """The oracle reads synthetic_truth.json beside the annotations; a copy from another world is refused
    naming the file and the field (it used to be a plain ValueError, a traceback at the programs' edge)."""
    folder = task_copy(synthetic_world, "youcook2", tmp_path / "youcook2")
    truth_path = folder / "synthetic_truth.json"
    truth = json.loads(truth_path.read_text())
    truth["text_steps"] = truth["text_steps"][:-1]
    truth_path.write_text(json.dumps(truth))
    result = run_program("vclip.evaluate", "--task", "youcook2", "--untrained", "tiny", "--data", folder,
                         "--no-progress")
    error_line(result, "synthetic_truth.json", "text_steps", "one per annotation row")
    truth_path.write_text(json.dumps({**truth, "format": "something else"}))
    with pytest.raises(DataFormatError, match="synthetic_truth.json: format"):
        from vclip.data.truth import load_truth
        load_truth(folder)
