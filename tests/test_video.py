"""vclip.video: decoding at 30 fps like ffmpeg's fps filter, resize/crop geometry, the s3d preprocessing."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from vclip.video import (
    VideoDecodeError,
    crop_offsets,
    decode_video,
    find_videos,
    fps_slots,
    frames_to_chunks,
    iter_video_frames,
    sample_video_path,
    scaled_size,
    write_video,
)


def _ramp_frames(n: int, height: int, width: int) -> np.ndarray:
    """Frame i is uniformly grey level 5 * i: the decoded value tells which input frame is shown."""
    return (np.arange(n, dtype=np.uint8) * 5)[:, None, None, None].repeat(height, 1).repeat(width, 2).repeat(3, 3)


def test_fps_slots_hand_values():
    # 25 -> 30 fps: input frame k lands in slot round(1.2 k) = 0, 1, 2, 4, 5, 6, 7, 8, 10, ...; slot 3
    # repeats frame 2, slot 9 repeats frame 7. One second of input gives exactly 30 output frames.
    idx = fps_slots(np.arange(25) / 25, end_time=1.0, fps=30)
    assert idx[:11].tolist() == [0, 1, 2, 2, 3, 4, 5, 6, 7, 7, 8]
    assert len(idx) == 30 and idx[-1] == 24
    # 60 -> 30 fps: frames 1, 2 both round to slot 1 (halves round up); the later one is kept.
    assert fps_slots(np.arange(8) / 60, end_time=8 / 60, fps=30).tolist() == [0, 2, 4, 6]
    # 30 -> 30: identity.
    assert fps_slots(np.arange(7) / 30, end_time=7 / 30).tolist() == list(range(7))
    # Irregular timing: the frame shown at slot n is the last one whose rounded slot is <= n.
    # Slots: 0.1 s -> 3, 0.12 s -> round(3.6) = 4, 0.25 s -> round(7.5) = 8; the end 0.3 s -> 9.
    assert fps_slots([0.0, 0.1, 0.12, 0.25], end_time=0.3).tolist() == [0, 0, 0, 1, 2, 2, 2, 2, 3]


def test_scaled_size_and_crop_follow_the_reference_arithmetic():
    assert scaled_size(720, 1280) == (224, 398)  # int(1280 * 224 / 720) = int(398.2)
    assert scaled_size(1280, 720) == (398, 224)
    assert scaled_size(272, 640) == (224, 527)  # int(527.06)
    assert scaled_size(224, 224) == (224, 224)
    assert crop_offsets(224, 398) == (0, 87)  # int(174 / 2)
    assert crop_offsets(527, 224) == (151, 0)  # int(151.5)
    with pytest.raises(ValueError, match="height=0"):
        scaled_size(0, 10)


def test_generated_video_decodes_to_30_fps_with_the_right_frames(tmp_path):
    """2 s at 25 fps (50 frames), 96x64, lossless: 60 frames at 30 fps, each the expected input frame."""
    frames = _ramp_frames(50, 64, 96)
    path = write_video(tmp_path / "ramp.mkv", frames, fps=25, codec="ffv1")
    decoded = decode_video(path, size=32)
    assert decoded.shape == (60, 32, 32, 3) and decoded.dtype == np.uint8
    expected = fps_slots(np.arange(50) / 25, end_time=2.0) * 5
    np.testing.assert_array_equal(decoded[:, 16, 16, 0], expected)


def test_lossy_generated_video_frame_count_and_recipe_size(tmp_path):
    """A 29.97 fps mpeg4 clip of 45 frames (1.5015 s) gives round(1.5015 * 30) = 45 frames at 224x224."""
    frames = _ramp_frames(45, 120, 160)
    path = write_video(tmp_path / "ntsc.mp4", frames, fps=Fraction(30000, 1001))
    decoded = decode_video(path)
    assert decoded.shape == (45, 224, 224, 3)
    assert np.abs(decoded[:, 100, 100, 0].astype(int) - frames[:, 0, 0, 0]).max() <= 6  # codec loss only


def test_resize_short_side_and_centre_crop_on_known_frames(tmp_path):
    """Width 128, height 64: red | green | blue bands at x < 32, 32 <= x < 96, x >= 96. Short side to 32
    scales to 32x64; the centre crop x = 16..48 covers exactly the green band of the original."""
    image = np.zeros((64, 128, 3), np.uint8)
    image[:, :32, 0] = 255
    image[:, 32:96, 1] = 255
    image[:, 96:, 2] = 255
    path = write_video(tmp_path / "bands.mkv", image[None].repeat(4, 0), fps=30, codec="ffv1")
    decoded = decode_video(path, size=32)
    assert decoded.shape == (4, 32, 32, 3)
    inner = decoded[:, :, 2:-2].astype(int)  # away from the bicubic ringing at the band edges
    assert (inner[..., 1] >= 250).all() and (inner[..., 0] <= 5).all() and (inner[..., 2] <= 5).all()
    # Portrait: 64 wide, 128 high, bands along y -> the crop is the middle band again.
    path = write_video(tmp_path / "bands_t.mkv", image.transpose(1, 0, 2)[None].repeat(2, 0), fps=30, codec="ffv1")
    inner = decode_video(path, size=32)[:, 2:-2].astype(int)
    assert (inner[..., 1] >= 250).all() and (inner[..., 0] <= 5).all()


def test_streaming_blocks_are_whole_seconds(tmp_path):
    path = write_video(tmp_path / "ramp.mkv", _ramp_frames(70, 32, 32), fps=30, codec="ffv1")
    blocks = list(iter_video_frames(path, size=16, block_seconds=1))
    assert [len(b) for b in blocks] == [30, 30, 10]
    np.testing.assert_array_equal(np.concatenate(blocks), decode_video(path, size=16))


def test_frames_to_chunks_scales_pads_and_lays_out():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(65, 6, 8, 3), dtype=np.uint8)
    chunks = frames_to_chunks(frames)
    assert chunks.shape == (3, 3, 30, 6, 8) and chunks.dtype == torch.float32
    # chunk[n, c, f, h, w] == frames[30 n + f, h, w, c] / 255
    np.testing.assert_allclose(chunks[1, 2, 4].numpy(), frames[34, :, :, 2] / 255.0, rtol=0, atol=1e-7)
    np.testing.assert_allclose(chunks[2, 0, 4].numpy(), frames[64, :, :, 0] / 255.0, rtol=0, atol=1e-7)
    assert float(chunks.min()) >= 0.0 and float(chunks.max()) <= 1.0
    assert torch.count_nonzero(chunks[2, :, 5:]) == 0  # 25 zero frames pad 65 up to 90
    assert frames_to_chunks(frames[:60]).shape[0] == 2  # a multiple of 30 is not padded
    floats = frames_to_chunks(frames.astype(np.float32) / 255.0)
    torch.testing.assert_close(floats, chunks)


@pytest.mark.parametrize("bad,message", [
    (np.zeros((0, 4, 4, 3), np.uint8), "T = 0"),
    (np.zeros((3, 4, 4), np.uint8), "RGB"),
    (np.full((3, 4, 4, 3), 255.0, np.float32), "in \\[0, 1\\]"),
    (np.zeros((3, 4, 4, 3), np.int32), "uint8"),
])
def test_frames_to_chunks_rejects_bad_input(bad, message):
    with pytest.raises(ValueError, match=message):
        frames_to_chunks(bad)


def test_corrupt_audio_only_and_missing_files_raise_named_errors(tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(VideoDecodeError, match="corrupt.mp4"):
        decode_video(corrupt)

    audio_only = tmp_path / "speech.m4a"
    with av.open(str(audio_only), mode="w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = (np.sin(np.arange(16000) / 10.0) * 3000).astype(np.int16)[None]
        for start in range(0, 16000, 1024):
            frame = av.AudioFrame.from_ndarray(samples[:, start:start + 1024], format="s16", layout="mono")
            frame.sample_rate = 16000
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(VideoDecodeError, match=r"speech\.m4a: no video stream \(streams found: audio\)"):
        decode_video(audio_only)

    with pytest.raises(VideoDecodeError, match="no such file"):
        decode_video(tmp_path / "absent.mp4")


def test_find_videos_expands_folders(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.mp4", "a/b/y.MKV", "a/notes.txt", "z.webm"):
        (tmp_path / name).write_bytes(b"")
    found = find_videos([tmp_path / "a", tmp_path / "z.webm", tmp_path / "a" / "x.mp4"])
    assert [p.name for p in found] == ["y.MKV", "x.mp4", "z.webm"]
    with pytest.raises(FileNotFoundError, match="missing"):
        find_videos([tmp_path / "missing"])


def test_sample_video_is_real_and_decodes_to_the_recipe():
    path = sample_video_path("bigbuckbunny")  # 1280x720, 132 frames at 25 fps (5.28 s), with audio
    frames = decode_video(path)
    assert frames.shape == (158, 224, 224, 3)  # round(5.28 * 30)
    assert frames.std() > 10  # real content, not a blank picture
    with pytest.raises(ValueError, match="unknown sample video"):
        sample_video_path("cats")


def test_variable_frame_rate_follows_fps_slots(tmp_path):
    """Irregular timestamps (duplicates and drops at 30 fps): the streaming decoder picks the frames
    that ``fps_slots`` (ffmpeg's fps filter rule) picks, up to the end of the last frame."""
    times_ms = [0, 20, 30, 100, 120, 250, 260, 270, 400, 520]
    path = tmp_path / "vfr.mkv"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("ffv1", rate=50)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "bgr0"
        stream.codec_context.time_base = Fraction(1, 1000)
        for index, t in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 20 * index, np.uint8), format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with av.open(str(path)) as container:  # what the container stored: times and the last frame's end
        stored = [(float(f.pts * f.time_base), float(f.duration * f.time_base)) for f in container.decode(video=0)]
    times = [t for t, _ in stored]
    decoded = decode_video(path, size=16)
    expected = fps_slots(times, end_time=times[-1] + stored[-1][1]) * 20
    np.testing.assert_array_equal(decoded[:, 8, 8, 0], expected)
    assert len(set(expected.tolist())) < len(times_ms)  # some frames were dropped
