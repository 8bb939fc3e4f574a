"""Wall time of zero-shot retrieval evaluation at MSR-VTT 1k-A size (1,000 text-video pairs).

Writes an MSR-VTT-layout folder of ``--pairs`` random L2-normalised float16 videos (10-30 s, like
MSR-VTT clips) with one sentence each (drawn from the synthetic world's phrases), then times
``vclip.tasks.evaluate_task(model, "msrvtt", folder)`` end to end: reading the CSV and the features,
tokenising, encoding every text and every video once in batches, the (N, N) score matrix and both
directions' metrics. Random initialisation (timing does not depend on the weights). Prints figures;
asserts nothing.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_evaluate.py                    # paper preset, CPU
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_evaluate.py --presets tiny minilm paper --device cuda
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from vclip.model import VideoCLIP  # noqa: E402
from vclip.tasks import EvalConfig, evaluate_task  # noqa: E402

SUBJECTS = ("a man", "a woman", "a chef", "a girl", "a person", "a boy")
ACTIONS = ("is chopping", "is stirring", "pours", "is washing", "fries", "is peeling", "serves", "is cutting")
OBJECTS = ("the onion", "some water", "the chicken", "a lemon", "the pasta", "some sauce", "the bread", "a carrot")
PLACES = ("in a kitchen", "at the counter", "on the stove", "in a bowl", "outside", "")


def write_msrvtt_folder(root: Path, pairs: int, seed: int = 0) -> Path:
    """An MSR-VTT 1k-A layout: ``MSRVTT_JSFUSION_test.csv`` + ``features/video<k>.npy`` (10-30 s, 512-d)."""
    rng = np.random.default_rng(seed)
    (root / "features").mkdir(parents=True, exist_ok=True)
    with open(root / "MSRVTT_JSFUSION_test.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["key", "vid_key", "video_id", "sentence"])
        for k in range(pairs):
            sentence = " ".join(w for w in (rng.choice(SUBJECTS), rng.choice(ACTIONS), rng.choice(OBJECTS),
                                            rng.choice(PLACES)) if w)
            writer.writerow([f"ret{k}", f"msr{7000 + k}", f"video{7000 + k}", sentence])
            features = rng.standard_normal((int(rng.integers(10, 31)), 512)).astype(np.float32)
            features /= np.linalg.norm(features, axis=1, keepdims=True)
            np.save(root / "features" / f"video{7000 + k}.npy", features.astype(np.float16))
    return root


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["paper"])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=EvalConfig().batch_size)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per preset (the best is reported)")
    args = parser.parse_args(argv)

    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""))
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_msrvtt_folder(Path(tmp) / "msrvtt", args.pairs)
        config = EvalConfig(batch_size=args.batch_size, progress=False)
        print(f"{'preset':8} {'params':>8} {'pairs':>6} {'batch':>6} {'seconds':>8} {'pairs/s':>8}")
        for preset in args.presets:
            torch.manual_seed(0)
            model = VideoCLIP.from_preset(preset).to(args.device).eval()
            params = sum(p.numel() for p in model.parameters())
            best = float("inf")
            for _ in range(args.repeats):
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                start = time.perf_counter()
                result = evaluate_task(model, "msrvtt", folder, config)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                best = min(best, time.perf_counter() - start)
            assert result.n_evaluated == args.pairs
            print(f"{preset:8} {params / 1e6:7.1f}M {args.pairs:6d} {args.batch_size:6d} {best:8.1f} "
                  f"{args.pairs / best:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
