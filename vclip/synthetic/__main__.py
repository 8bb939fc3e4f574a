"""``python -m vclip.synthetic --out DIR [--preset default|large|howto] [--seed S]``: write a synthetic world.

The world and its presets: :mod:`vclip.synthetic.generate`; the program only reads its command line,
calls :func:`~vclip.synthetic.generate.generate` and prints what was written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from vclip.cli import program
from vclip.logs import VERBOSE_FLAG, VERBOSE_HELP, setup_logging
from vclip.synthetic.generate import PRESETS, WORLD_FILE, generate, world_config


@program
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vclip.synthetic", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder to write the world into")
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace a complete world at --out")
    parser.add_argument("--tasks-per-domain", type=int, default=None,
                        help="keep at most this many tasks of each domain (default: the preset's; "
                             "all, hundreds per domain, except howto's 40)")
    parser.add_argument("--no-regime", action="store_true",
                        help="skip printing the retrieval regime beside HowTo100M's (it embeds every training "
                             "video with an untrained model: seconds)")
    parser.add_argument(VERBOSE_FLAG, action="store_true", help=VERBOSE_HELP)
    args = parser.parse_args(argv)
    if args.tasks_per_domain is not None and args.tasks_per_domain < 1:
        print(f"error: --tasks-per-domain must be >= 1, got {args.tasks_per_domain}", file=sys.stderr)
        return 2
    setup_logging(args.verbose, fmt="%(message)s")
    started = time.perf_counter()
    try:
        config = world_config(args.preset)
        if args.tasks_per_domain is not None:
            config.tasks_per_domain = args.tasks_per_domain
        record = generate(args.out, args.preset, args.seed, args.overwrite, config)
    except FileExistsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"synthetic world (preset {args.preset}, seed {args.seed}) written to {args.out} "
          f"in {time.perf_counter() - started:.1f} s")
    for name, count in record["counts"].items():
        print(f"  {name:<10} " + ", ".join(f"{k} {v}" for k, v in count.items()))
    size = sum(f.stat().st_size for f in Path(args.out).rglob("*") if f.is_file())
    print(f"  on disk    {size / 2**20:,.0f} MiB")
    recommended = record["recommended"]
    print(f"  training   {recommended['steps']} updates, {recommended['num_candidates']} candidates "
          f"({recommended['why']}); benchmarks/ablations.py reads this from {WORLD_FILE}")
    if not args.no_regime:
        from vclip.synthetic.measure import regime, regime_lines

        for line in regime_lines(regime(args.out, recommended["num_candidates"], args.seed)):
            print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
