"""``python -m vclip.extract``: raw videos -> one S3D feature per second, the way VideoCLIP's were made.

VideoCLIP (Xu et al. 2021, section 4.1); reference: fairseq ``examples/MMPT``
``scripts/video_feature_extractor/extract.py``. The recipe, the resume rule and the manifest are
:mod:`vclip.features`; this program reads its command line, calls :func:`vclip.features.extract` and
prints what was done.

Usage::

    python -m vclip.extract --videos clips/ more.mp4 --weights s3d_howto100m.pth --out features/
    python -m vclip.extract --videos clips/ --random-init --out demo_features/   # meaningless numbers
"""

from __future__ import annotations

import sys

from vclip.cli import program
from vclip.features import ExtractConfig, extract
from vclip.s3d import WEIGHTS_HELP


@program
def main(argv=None) -> int:
    """Returns 0 when every video has features, 1 when some failed (listed), 2 on a usage error."""
    from vclip.config import parse_typed_command
    from vclip.errors import ConfigError
    from vclip.logs import setup_logging

    description = ("Per-second S3D features of raw videos with VideoCLIP's recipe (30 fps, 224 px centre crop, "
                   "L2-normalised float16 <video_id>.npy of shape (seconds, 512)). " + WEIGHTS_HELP)
    try:
        config = parse_typed_command(ExtractConfig, argv, prog="python -m vclip.extract", description=description)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    setup_logging(config.verbose, fmt="%(levelname)s %(name)s: %(message)s")
    if not config.videos or not config.out:
        print("error: --videos (files and/or folders) and --out (the output folder) are required", file=sys.stderr)
        return 2
    try:
        report = extract(config)
    except (OSError, ValueError) as error:  # missing or wrong weights, --out a file, other settings in --out
        print("error: " + " ".join(str(error).split()), file=sys.stderr)
        return 2
    rate = report.seconds_of_video / report.wall_seconds if report.wall_seconds > 0 else float("nan")
    print(f"extracted {len(report.done)} videos ({report.seconds_of_video} s of video, {rate:.2f} s/s), "
          f"skipped {len(report.skipped)} already done, failed {len(report.failed)} -> {config.out}")
    for video_id, reason in report.failed.items():
        print(f"  FAILED {video_id}: {reason}")
    if config.random_init:
        print("WARNING: --random-init: these features are MEANINGLESS (random S3D weights).", file=sys.stderr)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
