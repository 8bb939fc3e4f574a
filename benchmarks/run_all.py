"""Run every benchmark of the kit in turn with its default settings and print its figures.

    python benchmarks/run_all.py            # all bench_*.py scripts (about 10-15 minutes on 2 cores)
    python benchmarks/run_all.py store encode

The ablation study (``benchmarks/ablations.py``, three seeds per setting) takes longer and is run on
its own. Each script prints its own figures; this runner adds how long each took and fails if any did.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    wanted = set(sys.argv[1:] if argv is None else argv)
    scripts = sorted(HERE.glob("bench_*.py"))
    if wanted:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in wanted]
        if not scripts:
            print(f"no benchmark named {sorted(wanted)}; have: "
                  f"{[s.stem.removeprefix('bench_') for s in sorted(HERE.glob('bench_*.py'))]}")
            return 2
    failed = []
    for script in scripts:
        print(f"\n===== {script.name}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(script)])
        print(f"===== {script.name}: {time.perf_counter() - start:.0f} s, exit {code}", flush=True)
        if code != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
