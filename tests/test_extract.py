"""python -m vclip.extract: the recipe end to end, failures reported, resume, weights handling."""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vclip.extract import main
from vclip.features import FAILURES_NAME, MANIFEST_NAME, RANDOM_INIT_README, chunk_features, extract_features
from vclip.s3d import OFFICIAL_WEIGHTS_URL, S3D
from vclip.video import decode_video, frames_to_chunks, write_video

SIZE = 32  # small frames keep S3D fast; the recipe's 224 is covered by test_full_size_recipe


def _clip(n: int, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(1, height // 8, width // 8, 3), dtype=np.uint8)
    frames = base.repeat(8, 1).repeat(8, 2).repeat(n, 0)  # 8x8-pixel blocks of random colour
    return frames + np.arange(n, dtype=np.uint8)[:, None, None, None] * 3  # brightening over time


def _audio_only(path):
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = (np.sin(np.arange(8000) / 7.0) * 3000).astype(np.int16)[None]
        for start in range(0, 8000, 1024):
            frame = av.AudioFrame.from_ndarray(samples[:, start:start + 1024], format="s16", layout="mono")
            frame.sample_rate = 16000
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("extract") / "videos"
    (folder / "sub").mkdir(parents=True)
    write_video(folder / "two_seconds.mkv", _clip(50, seed=1), fps=25, codec="ffv1")  # 2.0 s -> 60 frames
    write_video(folder / "sub" / "short.mp4", _clip(37, seed=2), fps=30)  # 37 frames -> 2 chunks (23 zeros)
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 4)
    _audio_only(folder / "podcast.mp4")
    return folder


def _run(*args) -> int:
    return main([*map(str, args), "--size", str(SIZE), "--no-progress"])


@pytest.fixture(scope="module")
def first_run(video_folder):
    """One random-init extraction of the folder, shared (read-only) by the tests below."""
    out = video_folder.parent / "features"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = _run("--videos", video_folder, "--random-init", "--out", out)
    return out, code, stdout.getvalue(), stderr.getvalue()


def test_random_init_extracts_recipe_features_and_reports_failures(first_run):
    out, code, printed, warned = first_run
    assert code == 1  # 1: some videos failed, the others were extracted
    assert "extracted 2 videos" in printed and "failed 2" in printed
    assert "corrupt" in printed and "podcast" in printed and "MEANINGLESS" in warned

    a, b = np.load(out / "two_seconds.npy"), np.load(out / "short.npy")
    assert a.shape == (2, 512) and b.shape == (2, 512) and a.dtype == np.float16
    np.testing.assert_allclose(np.linalg.norm(a.astype(np.float32), axis=1), 1.0, atol=2e-3)

    failures = json.loads((out / FAILURES_NAME).read_text())
    assert set(failures) == {"corrupt", "podcast"}
    assert "no video stream" in failures["podcast"]
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["weights"] == {"kind": "random-init", "seed": 0, "meaningless": True}
    assert manifest["videos"]["short"]["seconds"] == 2
    assert "MEANINGLESS" in (out / RANDOM_INIT_README).read_text()


def test_features_equal_the_recipe_by_hand(first_run, video_folder):
    """decode -> /255 + zero pad -> S3D -> L2 normalise -> float16, written out step by step."""
    torch.manual_seed(0)
    model = S3D().eval()
    frames = decode_video(video_folder / "sub" / "short.mp4", size=SIZE)
    assert frames.shape == (37, SIZE, SIZE, 3)
    with torch.no_grad():
        expected = F.normalize(model(frames_to_chunks(frames))["video_embedding"], dim=1).numpy()
    np.testing.assert_allclose(np.load(first_run[0] / "short.npy").astype(np.float32), expected, atol=2e-3)
    # Batching does not change the numbers (the script runs 32 seconds per forward).
    chunks = frames_to_chunks(frames)
    torch.testing.assert_close(chunk_features(model, chunks, batch_size=1), torch.from_numpy(expected))


def test_resume_skips_finished_videos_and_redoes_missing_ones(first_run, video_folder, tmp_path, capsys):
    out = tmp_path / "features"
    shutil.copytree(first_run[0], out)
    kept = (out / "short.npy").stat().st_mtime_ns
    (out / "two_seconds.npy").unlink()
    (out / ".two_seconds.npy.partial").write_bytes(b"interrupted")  # a crash mid-write is not "finished"
    assert _run("--videos", video_folder, "--random-init", "--out", out) == 1  # the two bad files fail again
    printed = capsys.readouterr().out
    assert "extracted 1 videos" in printed and "skipped 1 already done" in printed
    assert (out / "short.npy").stat().st_mtime_ns == kept
    np.testing.assert_array_equal(np.load(out / "two_seconds.npy"), np.load(first_run[0] / "two_seconds.npy"))


def test_refuses_to_mix_different_weights_in_one_folder(first_run, video_folder, tmp_path, capsys):
    out = tmp_path / "features"
    shutil.copytree(first_run[0], out)
    assert _run("--videos", video_folder, "--random-init", "--seed", "1", "--out", out) == 2
    assert "rather than mixing" in capsys.readouterr().err


def test_missing_weights_say_where_official_weights_come_from(video_folder, tmp_path, capsys):
    assert _run("--videos", video_folder, "--out", tmp_path / "f") == 2
    assert OFFICIAL_WEIGHTS_URL in capsys.readouterr().err
    assert _run("--videos", video_folder, "--weights", tmp_path / "s3d_howto100m.pth", "--out", tmp_path / "f") == 2
    err = capsys.readouterr().err
    assert "s3d_howto100m.pth" in err and OFFICIAL_WEIGHTS_URL in err


def test_weights_file_float32_mixed_5c(video_folder, tmp_path):
    torch.manual_seed(3)
    model = S3D().eval()
    weights = tmp_path / "s3d_howto100m.pth"
    torch.save(model.state_dict(), weights)
    out = tmp_path / "raw"
    assert _run("--videos", video_folder / "two_seconds.mkv", "--weights", weights, "--out", out,
                "--output", "mixed_5c", "--no-half-precision", "--no-l2-normalize") == 0
    raw = np.load(out / "two_seconds.npy")
    assert raw.shape == (2, 1024) and raw.dtype == np.float32
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    with torch.no_grad():
        expected = model(frames_to_chunks(decode_video(video_folder / "two_seconds.mkv", size=SIZE)))["mixed_5c"]
    np.testing.assert_allclose(raw, expected.numpy(), rtol=1e-4, atol=1e-5)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["weights"]["kind"] == "file" and not manifest["weights"]["meaningless"]
    assert not (out / RANDOM_INIT_README).exists()


def test_duplicate_video_ids_are_an_error(tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        write_video(tmp_path / folder / "clip.mp4", _clip(4), fps=30)
    assert _run("--videos", tmp_path / "a", tmp_path / "b", "--random-init", "--out", tmp_path / "f") == 2
    assert "share the id 'clip'" in capsys.readouterr().err


@pytest.mark.slow
def test_full_size_recipe_one_second(tmp_path):
    """The real recipe on a 1 s, 25 fps, 320x240 clip: 30 frames of 224x224, one L2-normalised row."""
    path = write_video(tmp_path / "one.mp4", _clip(25, height=240, width=320), fps=25)
    torch.manual_seed(0)
    features = extract_features(S3D().eval(), path)
    assert features.shape == (1, 512) and features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)
