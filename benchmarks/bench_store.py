"""Random-clip reads per second: the sharded feature store vs one ``np.load`` per video.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4.1 samples 16 clips of 3-32 s from each of 32
videos per step out of 1.1M HowTo100M videos. Reference: fairseq ``examples/MMPT`` shards the S3D
features (``utils/shardedtensor.py``, ``scripts/video_feature_extractor/shard_feature.py``) so that
a clip is a slice of a memory-mapped shard instead of a whole ``.npy`` file read.

The benchmark writes a pre-training folder of cheap random float16 features (default 10,000 videos
of 20-60 s, about 400 MB) and one caption per video in a temporary folder, builds the store with
:func:`vclip.data.build_store`, then times batches of 16 clips of 1-32 s from random videos, each
copied out as a float16 array (the stored dtype; the float32 conversion, the same for every method
and done when a batch is collated, is timed separately), three ways: the store (a slice of an open memory map), ``np.load`` of the whole file
per clip (what a naive loader does), and ``np.load(mmap_mode="r")`` per clip. The files were just
written, so every method reads from the page cache (warm); cold-disk figures would favour the store
further. Training does not call ``FeatureStore.clip``: the path it runs (whole videos' features from
the store, the overlapped sampler, collation, the host checks) is timed against the update by
``benchmarks/bench_train.py``, whose figure the README quotes. Run::

    python benchmarks/bench_store.py [--videos 10000] [--seconds 20] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm


def write_folder(folder: Path, videos: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    (folder / "features").mkdir(parents=True)
    ids, captions = [], {}
    for i in tqdm(range(videos), desc="writing random features", mininterval=2.0):
        video_id = f"vid{i:07d}"
        seconds = int(rng.integers(20, 61))
        features = rng.standard_normal((seconds, 512), dtype=np.float32)
        features /= np.linalg.norm(features, axis=1, keepdims=True)
        np.save(folder / "features" / f"{video_id}.npy", features.astype(np.float16))
        captions[video_id] = {"start": [0.0], "end": [float(seconds)], "text": ["a caption"]}
        ids.append(video_id)
    (folder / "raw_caption.json").write_text(json.dumps(captions))
    (folder / "train.lst").write_text("\n".join(ids) + "\n")
    return ids


def clip_plan(rng: np.random.Generator, ids: list[str], lengths: dict[str, int], batches: int):
    """(video id, start, end) for ``batches`` x 16 random clips of 1-32 s."""
    plan = []
    for video_id in rng.choice(ids, batches * 16):
        seconds = lengths[video_id]
        duration = min(int(rng.integers(1, 33)), seconds)
        start = int(rng.integers(0, seconds - duration + 1))
        plan.append((video_id, start, start + duration))
    return plan


def time_reads(read, plan, seconds: float) -> tuple[float, int]:
    """Clips per second of ``read(video_id, start, end)`` over the plan (stops after ``seconds``)."""
    done, started = 0, time.perf_counter()
    checksum = 0.0
    for video_id, start, end in plan:
        checksum += float(read(video_id, start, end)[0, 0])
        done += 1
        if done % 16 == 0 and time.perf_counter() - started > seconds:
            break
    return done / (time.perf_counter() - started), done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0, help="time budget of each method")
    parser.add_argument("--shard-size", type=int, default=4096)
    parser.add_argument("--keep", help="write the data here and keep it (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from vclip.data.store import FeatureStore, build_store

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_store_"))
    try:
        started = time.perf_counter()
        ids = write_folder(root / "pretrain", args.videos, args.seed)
        print(f"wrote {len(ids)} videos of random features in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        build_store(root / "pretrain", root / "store", shard_size=args.shard_size, progress=True)
        print(f"built the store in {time.perf_counter() - started:.1f} s")
        store = FeatureStore(root / "store")
        lengths = {v: store.num_seconds(v) for v in ids}
        plan = clip_plan(np.random.default_rng(args.seed + 1), ids, lengths, batches=100_000)
        features_dir = root / "pretrain" / "features"

        def per_file(video_id, start, end):
            return np.load(features_dir / f"{video_id}.npy")[start:end].copy()

        def per_file_mmap(video_id, start, end):
            return np.array(np.load(features_dir / f"{video_id}.npy", mmap_mode="r")[start:end])

        results = {}
        for name, read in (("store (memory-mapped shards)", store.clip), ("np.load per video", per_file),
                           ("np.load(mmap_mode='r') per video", per_file_mmap)):
            rate, done = time_reads(read, plan, args.seconds)
            results[name] = rate
            print(f"{name:<34} {rate:>10.0f} clips/s  {rate / 16:>9.0f} batches of 16/s  ({done} clips)")
        batch = [store.clip(v, s, e) for v, s, e in plan[:16]]
        started, repeats = time.perf_counter(), 0
        while time.perf_counter() - started < 2.0:
            [clip.astype(np.float32) for clip in batch]
            repeats += 1
        rate = 16 * repeats / (time.perf_counter() - started)
        print(f"{'(float16 -> float32 of a clip)':<34} {rate:>10.0f} clips/s")
        baseline = results["np.load per video"]
        print(f"store / np.load per video: {results['store (memory-mapped shards)'] / baseline:.1f}x "
              f"({args.videos} videos, warm page cache, {os.cpu_count()} CPU cores)")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
