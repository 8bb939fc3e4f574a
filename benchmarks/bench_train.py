"""Training throughput (pairs/s) and achieved FLOP/s as a fraction of a measured matmul peak.

Paper: VideoCLIP section 4.1 (512 pairs per GPU per update). Reference: ``how2.yaml``.

    python benchmarks/bench_train.py [--presets tiny minilm paper] [--steps 5]

For each preset that fits this machine: full training updates (forward, loss, backward, clipping,
Adam) of ``vclip.pretrain.Trainer`` on random groups (the time excludes sampling, which is measured
separately as "sampling ms/group"). Achieved FLOP/s counts the matrix products of both towers
(``vclip.model.count_matmul_flops``, forward x 3 for forward + backward) over the padded shapes
actually computed; the peak is the best of several float32 ``torch.mm`` of 2048 x 2048 on the same
threads.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks.bench_retrieval

SHAPES = {"tiny": [(8, 8), (32, 16)], "minilm": [(8, 8)], "paper": [(4, 4)]}  # (videos, clips) per group


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * n**3 / (time.perf_counter() - t0))
    return best


def bench(preset: str, videos: int, clips: int, steps: int, peak: float) -> dict:
    from benchmarks.bench_retrieval import random_store
    from vclip.model import count_matmul_flops
    from vclip.pretrain import PretrainConfig, Trainer

    store = random_store(max(videos * 2, 8))
    with tempfile.TemporaryDirectory() as tmp:
        cfg = PretrainConfig(output=tmp, preset=preset, videos_per_group=videos, clips_per_video=clips,
                             retrieval=False, progress=False, device="cpu", steps=steps + 1)
        trainer = Trainer(cfg, data=(store, store.video_ids, []))
        groups = trainer.plan_epoch(0)[0]
        t0 = time.perf_counter()
        batches = [trainer.batch_for(0, i, groups[i % len(groups)]) for i in range(steps + 1)]
        sampling = (time.perf_counter() - t0) / len(batches)
        trainer.train_step(batches[0])  # warm-up
        t0 = time.perf_counter()
        for b in batches[1:]:
            trainer.train_step(b)
        per_step = (time.perf_counter() - t0) / steps
    pairs = videos * clips
    text_len = int(np.mean([b.input_ids.shape[1] for b in batches[1:]]))
    flops = 3 * count_matmul_flops(trainer.model.config, video_batch=pairs, text_batch=pairs, text_len=text_len)
    return {"preset": preset, "pairs": pairs, "step_s": per_step, "pairs_per_s": pairs / per_step,
            "gflops": flops / per_step / 1e9, "fraction": flops / per_step / peak, "sampling_ms": sampling * 1e3,
            "params_m": trainer.model.num_parameters() / 1e6}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "minilm", "paper"])
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args(argv)
    peak = matmul_peak()
    print(f"torch threads: {torch.get_num_threads()}, float32 matmul peak: {peak / 1e9:.1f} GFLOP/s")
    print(f"{'preset':8s} {'params':>8s} {'pairs':>6s} {'s/step':>8s} {'pairs/s':>8s} {'GFLOP/s':>8s} "
          f"{'of peak':>8s} {'sampling ms/group':>18s}")
    for preset in args.presets:
        for videos, clips in SHAPES[preset]:
            r = bench(preset, videos, clips, args.steps if preset != "paper" else max(2, args.steps // 2), peak)
            print(f"{preset:8s} {r['params_m']:7.1f}M {r['pairs']:6d} {r['step_s']:8.3f} {r['pairs_per_s']:8.1f} "
                  f"{r['gflops']:8.1f} {r['fraction']:8.1%} {r['sampling_ms']:18.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
