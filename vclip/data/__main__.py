"""``python -m vclip.data``: check a dataset folder, or build the sharded feature store.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (data). Reference: fairseq ``examples/MMPT``
``scripts/video_feature_extractor/shard_feature.py``, ``scripts/text_token_extractor/pretokenization.py``
and ``mmpt/processors/dedupprocessor.py`` (one command here instead of three scripts).

    python -m vclip.data check <folder or annotation file> [--layout L] [--features DIR] [--strict]
    python -m vclip.data build-store <pretrain folder> --out <dir> [--shard-size 4096] [--dedup-seed 0]
"""

from __future__ import annotations

import argparse
import logging
import sys

from vclip.cli import program
from vclip.errors import DataFormatError
from vclip.logs import VERBOSE_FLAG, VERBOSE_HELP, setup_logging
from vclip.tasks.check import check_path, layouts


@program
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vclip.data", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="recognise a layout, validate it, report what is there")
    check.add_argument("path", help="a dataset folder, a synthetic world root, a store, or an annotation file")
    check.add_argument("--layout", choices=layouts(), help="skip detection")
    check.add_argument("--features", help="folder of <video_id>.npy (default: features/ beside the annotations)")
    check.add_argument("--no-values", action="store_true", help="check feature headers only, not NaN/inf (faster)")
    check.add_argument("--list-missing", action="store_true", help="list every missing video id")
    check.add_argument("--strict", action="store_true", help="exit 1 on any problem, not only when unusable")
    build = commands.add_parser("build-store", help="build the sharded feature store of a pre-training folder")
    build.add_argument("folder", help="pre-training folder: features/, raw_caption.json, train.lst, val.lst")
    build.add_argument("--out", required=True, help="store folder to write")
    build.add_argument("--shard-size", type=int, default=4096, help="videos per shard (reference: 4096)")
    build.add_argument("--dedup-seed", type=int, default=0, help="seed of the dedup coin (the reference's is unseeded)")
    build.add_argument("--no-dedup", action="store_true", help="keep the raw rolling captions")
    build.add_argument("--overwrite", action="store_true", help="rebuild an existing store")
    parser.add_argument(VERBOSE_FLAG, action="store_true", help=VERBOSE_HELP)
    args = parser.parse_args(argv)
    setup_logging(args.verbose, fmt="%(levelname)s %(message)s", level=logging.WARNING)

    if args.command == "check":
        try:
            reports = check_path(args.path, args.layout, args.features, check_values=not args.no_values)
        except (DataFormatError, OSError) as error:  # an unreadable path: one line, no traceback
            print(f"error: {error}", file=sys.stderr)
            return 2
        for report in reports:
            print(report.format(list_missing=-1 if args.list_missing else 20))
        unusable = [r for r in reports if not r.usable]
        if unusable:
            print(f"NOT USABLE: {', '.join(str(r.path) for r in unusable)}", file=sys.stderr)
            return 1
        if args.strict and any(r.problems for r in reports):
            return 1
        return 0

    from vclip.data.store import build_store

    try:
        info = build_store(args.folder, args.out, args.shard_size, dedup=not args.no_dedup,
                           dedup_seed=args.dedup_seed, overwrite=args.overwrite)
    except (ValueError, OSError) as error:  # DataFormatError, an existing store, --shard-size 0, an unwritable --out
        print(f"error: {error}", file=sys.stderr)
        return 1
    for split, totals in info["totals"].items():
        print(f"{split}: " + ", ".join(f"{v} {k}" for k, v in totals.items()))
    for reason, ids in info["skipped"].items():
        print(f"left out ({reason}): {len(ids)} videos, e.g. {ids[:5]}")
    for reason, count in info["caption_drops"].items():
        print(f"captions dropped ({reason}): {count}")
    print(f"store written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
