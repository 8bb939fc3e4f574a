"""Encoding throughput of the VideoCLIP towers on this machine, against a measured matmul peak.

For each preset it times batched ``encode_video`` (B videos of 32 seconds: 34 positions, as the
reference always pads to 32) and ``encode_text`` (B texts of 63 positions: the reference pads every
text to 63) in eval mode under ``torch.inference_mode``, counts the towers' matmul FLOPs
(``vclip.model.count_matmul_flops``), and divides by a float32 peak measured in the same run with
large ``torch.mm`` calls. Prints one table; no assertions.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_encode.py                 # tiny, minilm, paper
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_encode.py --presets paper --batch 128
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_encode.py --threads 1 --clock cpu   # busy machine
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import torch

from vclip.model import VideoCLIP, count_matmul_flops

CLOCK = time.perf_counter  # wall time; --clock cpu switches to this process's CPU time (1 thread only)


def synced(fn, device: str):
    """``fn`` followed by a wait for the GPU (on a CPU, ``fn`` itself): timings of finished work."""
    if not str(device).startswith("cuda"):
        return fn

    def call():
        fn()
        torch.cuda.synchronize()

    return call


def best_time(fn, repeats: int) -> float:
    """Smallest time of ``repeats`` calls after one warm-up call (other load only slows runs)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = CLOCK()
        fn()
        best = min(best, CLOCK() - start)
    return best


class MatmulPeak:
    """float32 FLOP/s of a square ``torch.mm``; sampled between workloads, the best sample is kept.

    Sampling right next to each workload exposes both to the same background load, so the ratio
    stays meaningful on a shared machine.
    """

    def __init__(self, size: int, device: str = "cpu", dtype: torch.dtype = torch.float32):
        self.size, self.device = size, device
        self.a = torch.randn(size, size, device=device, dtype=dtype)
        self.b = torch.randn(size, size, device=device, dtype=dtype)
        self.samples: list[float] = []

    def sample(self, repeats: int = 2) -> None:
        seconds = best_time(synced(lambda: torch.mm(self.a, self.b), self.device), repeats)
        self.samples.append(2 * self.size**3 / seconds)

    @property
    def best(self) -> float:
        return max(self.samples)


def interleaved_best(fn, peak: MatmulPeak, repeats: int) -> float:
    """Best time of ``fn`` over ``repeats`` calls, with a matmul-peak sample before each call."""
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        peak.sample()
        start = CLOCK()
        fn()
        best = min(best, CLOCK() - start)
    return best


def bench_preset(name: str, batch: int, text_len: int, repeats: int, attn: str, peak: MatmulPeak,
                 device: str = "cpu", precision: str = "fp32", compile_model: bool = False) -> dict:
    """Encoding throughput of ``name``; ``precision`` is an autocast as training's
    (:func:`vclip.training.update.autocast_dtype`), ``compile_model`` puts both towers under torch.compile."""
    from vclip.training.update import autocast_dtype

    torch.manual_seed(0)
    model = VideoCLIP.from_preset(name, attn_implementation=attn).eval().to(device)
    config = model.config
    dtype = autocast_dtype(precision, torch.device(device))
    encode_video, encode_text = model.encode_video, model.encode_text
    if compile_model:
        encode_video, encode_text = torch.compile(encode_video), torch.compile(encode_text, dynamic=True)
    vfeats = torch.randn(batch, config.max_video_len, config.video_feature_dim, device=device)
    vmask = torch.ones(batch, config.max_video_len, dtype=torch.bool, device=device)
    vmask[batch // 2 :, 20:] = False  # half of the videos are 20 s long (padding costs the same)
    input_ids = torch.randint(1000, 30000, (batch, text_len), device=device)
    input_ids[:, 0], input_ids[:, -1] = 101, 102
    attention_mask = torch.ones(batch, text_len, dtype=torch.bool, device=device)
    with torch.inference_mode(), torch.autocast(torch.device(device).type, dtype=dtype, enabled=dtype is not None):
        video_s = interleaved_best(synced(lambda: encode_video(vfeats, vmask), device), peak, repeats)
        text_s = interleaved_best(synced(lambda: encode_text(input_ids, attention_mask), device), peak, repeats)
    video_flops = count_matmul_flops(config, video_batch=batch)
    text_flops = count_matmul_flops(config, text_batch=batch, text_len=text_len)
    return {
        "preset": name,
        "device": device,
        "precision": precision,
        "compile": compile_model,
        "params_M": model.num_parameters() / 1e6,
        "videos_per_s": batch / video_s,
        "texts_per_s": batch / text_s,
        "video_flops_per_s": video_flops / video_s,
        "text_flops_per_s": text_flops / text_s,
    }


def train_step_time(name: str, videos: int, clips: int, repeats: int) -> float:
    """Seconds of one training step (forward, loss, backward, AdamW) on videos x clips pairs."""
    from vclip.loss import contrastive_loss

    torch.manual_seed(0)
    model = VideoCLIP.from_preset(name).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    pairs = videos * clips
    vfeats = torch.randn(pairs, 32, model.config.video_feature_dim)
    vmask = torch.rand(pairs, 32) < 0.6
    input_ids = torch.randint(1000, 30000, (pairs, 40))
    input_ids[:, 0], input_ids[:, -1] = 101, 102
    attention_mask = torch.ones(pairs, 40, dtype=torch.bool)

    def step():
        out = model(vfeats, vmask, input_ids, attention_mask)
        loss = contrastive_loss(out.pooled_video, out.pooled_text)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return best_time(step, repeats)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presets", nargs="+", default=["tiny", "minilm", "paper"])
    parser.add_argument("--batch", type=int, default=32, help="videos / texts per encode call")
    parser.add_argument(
        "--text-len", type=int, default=63, help="text positions incl. [CLS]/[SEP] (reference: 63)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per measurement (best is kept)")
    parser.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa")
    parser.add_argument("--peak-size", type=int, default=2048, help="side of the square matmul for the peak")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: time by this process's CPU time, which other jobs on a shared machine barely "
        "disturb; only meaningful with --threads 1",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu":
        if torch.get_num_threads() != 1:
            parser.error("--clock cpu needs --threads 1 (CPU time adds up over threads)")
        global CLOCK
        CLOCK = time.process_time

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, {cpu_name()}"
    )
    load_before = os.getloadavg()[0]
    peak = MatmulPeak(args.peak_size)
    peak.sample(5)
    rows = [
        bench_preset(name, args.batch, args.text_len, args.repeats, args.attn, peak) for name in args.presets
    ]
    step_s = train_step_time("tiny", 8, 8, max(args.repeats, 3)) if "tiny" in args.presets else None
    peak.sample(5)
    print(
        f"float32 matmul peak ({args.peak_size}x{args.peak_size} torch.mm, best of {len(peak.samples)} samples "
        f"taken between the workloads): {peak.best / 1e9:.1f} GFLOP/s (median sample "
        f"{sorted(peak.samples)[len(peak.samples) // 2] / 1e9:.1f}); 1-min load average {load_before:.1f} "
        f"before, {os.getloadavg()[0]:.1f} after"
    )
    print(
        f"batch {args.batch}, video 34 positions, text {args.text_len} positions, attention {args.attn}, "
        f"{args.clock} clock"
    )
    header = f"{'preset':<8} {'params':>8} {'videos/s':>10} {'texts/s':>10} {'video GFLOP/s':>14} {'text GFLOP/s':>13} {'video %peak':>12} {'text %peak':>11}"
    print(header)
    for row in rows:
        print(
            f"{row['preset']:<8} {row['params_M']:>7.1f}M {row['videos_per_s']:>10.1f} {row['texts_per_s']:>10.1f} "
            f"{row['video_flops_per_s'] / 1e9:>14.1f} {row['text_flops_per_s'] / 1e9:>13.1f} "
            f"{100 * row['video_flops_per_s'] / peak.best:>11.0f}% {100 * row['text_flops_per_s'] / peak.best:>10.0f}%"
        )
    if step_s is not None:
        print(
            f"tiny training step, 8 videos x 8 clips = 64 pairs, 40 text positions (fwd+loss+bwd+AdamW): {step_s * 1e3:.0f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
