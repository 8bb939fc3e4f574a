"""Raw videos -> one S3D feature per second, the way VideoCLIP's were made (``python -m vclip.extract`` runs it).

VideoCLIP (Xu et al. 2021, section 4.1) trains and evaluates on per-second S3D ``video_embedding``
features of MIL-NCE's HowTo100M model (Miech et al. 2020). Reference: fairseq ``examples/MMPT``
``scripts/video_feature_extractor/extract.py`` run by ``how2/s3d.sh``: decode at
30 fps, short side 224, centre crop 224x224, RGB / 255, zero-pad to a multiple of 30 frames, one
30-frame chunk per second through S3D in batches of 32 chunks, L2-normalise each row
(``--l2_normalize 1``), save float16 ``<video_id>.npy`` of shape (seconds, 512).

Usage::

    python -m vclip.extract --videos clips/ more.mp4 --weights s3d_howto100m.pth --out features/
    python -m vclip.extract --videos clips/ --random-init --out demo_features/   # meaningless numbers

Differences from the reference script, all on the side of robustness (the recipe is unchanged):
decoding streams whole seconds (constant memory); each feature file is written atomically so a rerun
resumes by skipping finished videos; a failing video (corrupt, no video stream) is reported and the
batch continues; ``extraction.json`` in the output folder records the weights and recipe, written
before the first feature file (so a run killed part-way leaves them too), and a rerun refuses to mix
features made with different weights, seeds or recipes in one folder, naming the setting that differs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from vclip.progress import progress_bar
from vclip.s3d import S3D, WEIGHTS_HELP, load_s3d_weights
from vclip.video import FPS, SIZE, VideoDecodeError, find_videos, frames_to_chunks, iter_video_frames

logger = logging.getLogger("vclip.extract")  # also under python -m

MANIFEST_NAME = "extraction.json"
FAILURES_NAME = "failures.json"
RANDOM_INIT_README = "RANDOM_INIT_FEATURES_ARE_MEANINGLESS.txt"
OUTPUTS = ("video_embedding", "mixed_5c")


@dataclass
class ExtractConfig:
    videos: list[str] = field(default_factory=list)  # files and/or folders (searched recursively)
    out: str = ""  # output folder: <video_id>.npy per video, extraction.json, failures.json
    weights: str | None = None  # s3d_howto100m.pth (official MIL-NCE weights)
    random_init: bool = False  # no weights: a seeded random S3D, for demos only (features are meaningless)
    seed: int = 0  # seed of --random-init
    batch_size: int = 32  # one-second chunks per S3D forward (s3d.sh: --batch_size 32)
    fps: float = FPS  # decoding frame rate (reference: 30)
    size: int = SIZE  # short side and crop size (reference: 224); smaller only for tests and demos
    l2_normalize: bool = True  # reference default (--l2_normalize 1), what VideoCLIP trained on
    half_precision: bool = True  # save float16, as the released features (--half_precision 1)
    output: Literal["video_embedding", "mixed_5c"] = "video_embedding"  # mixed_5c: the 1024-d pooled layer before fc
    device: str = "auto"  # "auto" = cuda when available, else cpu
    progress: bool = True  # tqdm progress bars
    verbose: bool = False  # also show the libraries' log lines (av, torch hub, ...)

    def __post_init__(self):
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.size < 2 or self.size % 2:
            raise ValueError(f"size must be an even number of pixels >= 2 (S3D needs even H, W), got {self.size}")
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if self.fps != FPS:
            logger.warning("fps=%s differs from the recipe's 30; each feature still covers 30 frames", self.fps)

    def recipe(self) -> dict:
        """The settings that change the numbers (compared on resume)."""
        return {"fps": self.fps, "size": self.size, "frames_per_feature": 30, "l2_normalize": self.l2_normalize,
                "half_precision": self.half_precision, "output": self.output}


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@torch.no_grad()
def chunk_features(model: S3D, chunks: torch.Tensor, batch_size: int = 32, l2_normalize: bool = True,
                   output: str = "video_embedding") -> torch.Tensor:
    """S3D on one-second chunks (N, 3, 30, H, W) in batches -> (N, D) float32 on the CPU.

    D = 512 for ``video_embedding`` (1024 for ``mixed_5c``); rows are L2-normalised when asked
    (``F.normalize``, eps 1e-12, as the reference).
    """
    device = next(model.parameters()).device
    rows = []
    for start in range(0, len(chunks), batch_size):
        out = model(chunks[start:start + batch_size].to(device))[output].float()
        rows.append((F.normalize(out, dim=1) if l2_normalize else out).cpu())
    return torch.cat(rows)


def extract_features(model: S3D, video: str | Path | np.ndarray | torch.Tensor, batch_size: int = 32,
                     fps: float = FPS, size: int = SIZE, l2_normalize: bool = True,
                     output: str = "video_embedding", progress: tqdm | None = None) -> np.ndarray:
    """Features of one video: (seconds, 512) float32, one row per 30 decoded frames.

    ``video`` is a file (decoded with the recipe, streaming ``batch_size`` seconds at a time) or
    frames (T, H, W, 3) already resized and cropped (uint8, or float in [0, 1]). ``progress``: a
    tqdm bar advanced by the seconds done.
    """
    if isinstance(video, (str, Path)):
        blocks: Iterable = iter_video_frames(video, fps=fps, size=size, block_seconds=batch_size)
    else:
        blocks = [video]
    parts = []
    for block in blocks:
        parts.append(chunk_features(model, frames_to_chunks(block), batch_size, l2_normalize, output))
        if progress is not None:
            progress.update(len(parts[-1]))
    if not parts:
        raise VideoDecodeError(f"{video}: no frames")
    return torch.cat(parts).numpy()


def _check_weights_choice(config: ExtractConfig) -> None:
    if config.random_init and config.weights:
        raise ValueError(f"give either --weights ({config.weights}) or --random-init, not both")
    if not config.random_init and not config.weights:
        raise FileNotFoundError(f"no --weights given. {WEIGHTS_HELP} For a demo without them, pass --random-init "
                                "(the features are then meaningless).")
    if not config.random_init and not Path(config.weights).is_file():
        raise FileNotFoundError(f"S3D weights not found: {config.weights}. {WEIGHTS_HELP}")


def build_s3d(config: ExtractConfig) -> S3D:
    """The official weights, or (``random_init``) a seeded random network with a loud warning."""
    _check_weights_choice(config)
    if config.random_init:
        logger.warning("RANDOM-INIT S3D: the features are MEANINGLESS (demo and plumbing only). %s", WEIGHTS_HELP)
        torch.manual_seed(config.seed)
        return S3D().eval()
    return load_s3d_weights(config.weights)


def _file_digest(path: str | Path, limit: int = 1 << 24) -> str:
    """sha256 of the first 16 MiB and the size: cheap identity of a weights file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(limit))
    return f"{digest.hexdigest()[:16]}-{os.path.getsize(path)}"


def _manifest(config: ExtractConfig) -> dict:
    if config.random_init:
        weights = {"kind": "random-init", "seed": config.seed, "meaningless": True}
    else:
        weights = {"kind": "file", "name": Path(config.weights).name, "digest": _file_digest(config.weights),
                   "meaningless": False}
    return {"weights": weights, "recipe": config.recipe(), "videos": {}}


def _settings_differences(old: dict, new: dict) -> list[str]:
    """``"recipe.output: 'mixed_5c' in the folder, 'video_embedding' now"`` for each setting that differs."""
    differences = []
    for section in ("weights", "recipe"):
        before, after = old.get(section) or {}, new[section]
        for key in sorted(set(before) | set(after), key=str):
            if before.get(key) != after.get(key):
                differences.append(f"{section}.{key}: {before.get(key)!r} in the folder, {after.get(key)!r} now")
    return differences


def _check_or_start_manifest(out: Path, manifest: dict) -> dict:
    """The manifest to write into ``out``: ``manifest``, carrying on the folder's list of videos.

    Refused (a folder of features has one recipe and one set of weights): a folder whose
    ``extraction.json`` names other settings, and a folder holding ``.npy`` files without one (their
    settings are unknown).
    """
    path = out / MANIFEST_NAME
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: expected the JSON manifest of an extraction, found {error}") from None
        if not isinstance(old, dict):
            raise ValueError(f"{path}: expected the JSON manifest of an extraction, found a {type(old).__name__}")
        differences = _settings_differences(old, manifest)
        if differences:
            raise ValueError(f"{path}: the features in {out} were made with other settings ({'; '.join(differences)}); "
                             "rerun with the folder's settings to finish it, or choose another --out rather than mixing them")
        manifest["videos"] = old.get("videos", {})
    elif out.is_dir() and any(out.glob("*.npy")):
        raise ValueError(f"{out}: holds .npy files but no {MANIFEST_NAME}, so their weights and recipe are unknown; "
                         "choose another --out (features of one folder must share one recipe)")
    return manifest


def _write_manifest(out: Path, manifest: dict) -> None:
    _write_atomic(out / MANIFEST_NAME, lambda h: h.write(json.dumps(manifest, indent=1).encode()))


def _write_atomic(path: Path, write) -> None:
    temporary = path.with_name(f".{path.name}.partial")
    with open(temporary, "wb") as handle:
        write(handle)
    os.replace(temporary, path)


def video_ids(videos: list[Path]) -> dict[str, Path]:
    """``<video_id>`` (the file name without its suffix) -> path; two files with one id is an error."""
    ids: dict[str, Path] = {}
    for path in videos:
        if path.stem in ids:
            raise ValueError(f"two videos share the id {path.stem!r} (the output file name): {ids[path.stem]} and "
                             f"{path}; rename one or extract them into different --out folders")
        ids[path.stem] = path
    return ids


@dataclass
class ExtractReport:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already extracted (resume)
    failed: dict[str, str] = field(default_factory=dict)  # video id -> reason
    seconds_of_video: int = 0
    wall_seconds: float = 0.0


def extract(config: ExtractConfig) -> ExtractReport:
    """Extract every video of ``config.videos`` into ``config.out``; see the module docstring."""
    if not config.out:
        raise ValueError("--out is required (the folder that receives <video_id>.npy files)")
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: expected a folder for the <video_id>.npy files, found a file")
    ids = video_ids(find_videos(config.videos))
    if not ids:
        raise FileNotFoundError(f"no videos found in {config.videos}")
    _check_weights_choice(config)
    manifest = _check_or_start_manifest(out, _manifest(config))  # before any work: never mix weights
    pending = {video_id: path for video_id, path in ids.items() if not (out / f"{video_id}.npy").exists()}
    report = ExtractReport(skipped=[video_id for video_id in ids if video_id not in pending])
    model = build_s3d(config).to(resolve_device(config.device)) if pending else None  # bad weights: nothing written
    out.mkdir(parents=True, exist_ok=True)
    _write_manifest(out, manifest)  # first: a run killed part-way leaves the settings its files were made with
    if config.random_init:
        (out / RANDOM_INIT_README).write_text(
            "These features were extracted by `python -m vclip.extract --random-init`: S3D had RANDOM weights.\n"
            "They are MEANINGLESS as video descriptions and only exercise the pipeline.\n" + WEIGHTS_HELP + "\n")
    start = time.perf_counter()
    bar = progress_bar(pending.items(), desc="extract", unit="video", enabled=config.progress)
    for video_id, path in bar:
        target = out / f"{video_id}.npy"
        bar.set_postfix_str(video_id)
        seconds_bar = progress_bar(desc=video_id, unit="s", leave=False, enabled=config.progress)
        try:
            features = extract_features(model, path, config.batch_size, config.fps, config.size,
                                        config.l2_normalize, config.output, progress=seconds_bar)
        except (VideoDecodeError, RuntimeError, ValueError, OSError) as error:  # reported, never silent
            report.failed[video_id] = f"{type(error).__name__}: {error}"
            logger.error("failed: %s", error)
            continue
        finally:
            seconds_bar.close()
        features = features.astype(np.float16 if config.half_precision else np.float32)
        _write_atomic(target, lambda handle, array=features: np.save(handle, array))
        manifest["videos"][video_id] = {"source": str(path), "seconds": int(features.shape[0])}
        _write_manifest(out, manifest)
        report.done.append(video_id)
        report.seconds_of_video += int(features.shape[0])
    report.wall_seconds = time.perf_counter() - start
    failures_path = out / FAILURES_NAME
    if report.failed:
        _write_atomic(failures_path, lambda h: h.write(json.dumps(report.failed, indent=1).encode()))
    elif failures_path.exists():
        failures_path.unlink()  # a rerun that fixed every failure leaves no stale list
    return report


__all__ = ["ExtractConfig", "ExtractReport", "build_s3d", "chunk_features", "extract", "extract_features",
           "resolve_device", "video_ids"]
