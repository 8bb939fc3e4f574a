"""Peak memory of the first updates of an MSR-VTT fine-tune at dup 1 and dup 100: streamed batches.

An epoch of MSR-VTT's reference recipe repeats every training video ``dup`` = 20 times (about 9k
videos x 20 = 180k clips of 32 x 512 float32, about 12 GB as tensors). The fine-tuning batches are
streamed (:class:`vclip.tasks.training.EpochBatches`): an epoch is planned as index arrays and each
batch's tensors are built when the loop reaches it, so peak memory should not grow with ``dup``.

Each configuration runs in its own process on the synthetic world's ``msrvtt`` folder: it builds the
teaching recipe's :class:`vclip.training.finetuning.FineTuner` (from a tiny model saved for it) with
``dup`` set, plans epoch 0 as the loop does and trains its first ``--updates`` updates, then reports
its peak resident set size (``ru_maxrss``). A third row builds every batch of the dup-100 epoch
before the first update (what ``Batches.epoch`` did before it streamed), for comparison.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/finetune_memory.py

Writes ``benchmarks/results/finetune_memory.json`` (``--out``) and prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
COMMAND = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/finetune_memory.py"


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args) -> None:
    """One configuration, in this process: plan epoch 0, train ``updates`` updates, print a JSON line."""
    import torch

    from vclip.model import VideoCLIP
    from vclip.training.finetuning import FineTuner, recipe

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as scratch:
        init = Path(scratch) / "init"
        VideoCLIP.from_preset("tiny").save_pretrained(init)
        config = recipe("msrvtt", "teaching", init=str(init), data=args.data, output=str(Path(scratch) / "run"),
                        dup=args.dup, device="cpu", progress=False)
        tuner = FineTuner(config)
        before = peak_rss_mb()
        started = time.perf_counter()
        batches = tuner.train_batches.epoch(0)
        plan_seconds = time.perf_counter() - started
        built = list(batches) if args.eager else None  # every batch as tensors first: the behaviour before streaming
        for position in range(args.updates):
            tuner.train_step(built[position] if built is not None else batches[position])
        clips = len(tuner.train_split) * args.dup
        print(json.dumps({"dup": args.dup, "eager": args.eager, "updates": args.updates, "batches": len(batches),
                          "training_videos": len(tuner.train_split), "clips_per_epoch": clips,
                          "epoch_tensors_mb": clips * 32 * 512 * 4 / 2**20, "plan_seconds": plan_seconds,
                          "peak_rss_mb_before_epoch": before, "peak_rss_mb": peak_rss_mb()}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT / "data/generated/synthetic/msrvtt"), help="an msrvtt folder")
    parser.add_argument("--updates", type=int, default=5, help="updates trained in each configuration")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/finetune_memory.json"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dup", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--eager", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    rows = []
    for dup, eager in ((1, False), (100, False), (100, True)):
        command = [sys.executable, __file__, "--child", "--data", args.data, "--updates", str(args.updates),
                   "--dup", str(dup)] + (["--eager"] if eager else [])
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.stderr.write(done.stderr)
            return done.returncode
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        row = rows[-1]
        print(f"dup {dup:>3} {'eager   ' if eager else 'streamed'}: {row['batches']:>5} batches, "
              f"{row['clips_per_epoch']:>6} clips ({row['epoch_tensors_mb']:.0f} MB as tensors), peak RSS "
              f"{row['peak_rss_mb']:.0f} MB after {row['updates']} updates", flush=True)
    payload = {"command": COMMAND, "machine": platform.platform(), "python": platform.python_version(),
               "threads": os.environ.get("OMP_NUM_THREADS", "default"), "rows": rows,
               "streamed_dup100_over_dup1": rows[1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(payload, indent=1) + "\n")
    print(f"streamed: dup 100 / dup 1 peak RSS = {payload['streamed_dup100_over_dup1']:.3f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
