"""``python -m vclip.notebooks run --out DIR [--params YAML] [--only NN]`` and ``list``: the papermill runner
behind ``make demo``. The runner and the notebooks' helpers are :mod:`vclip.notebooks`; this program reads
its command line, runs them and prints the summary.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vclip.cli import program
from vclip.logs import VERBOSE_FLAG, VERBOSE_HELP, setup_logging
from vclip.notebooks import NOTEBOOKS_DIR, discover_notebooks, format_summary, notebook_parameters, run_notebooks


@program
def main(argv: list[str] | None = None) -> int:
    """``python -m vclip.notebooks``: 0 when every notebook ran, 1 when one failed, 2 on a user's mistake."""
    parser = argparse.ArgumentParser(prog="python -m vclip.notebooks", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute every numbered notebook with papermill and print a summary")
    run.add_argument("--out", type=Path, default=Path("runs/notebooks"), help="folder for executed notebooks")
    run.add_argument("--params", type=Path, default=None, help="YAML parameters file (common / notebooks)")
    run.add_argument("--only", nargs="+", default=None, help="stems or two-digit prefixes to run")
    run.add_argument("--notebooks-dir", type=Path, default=NOTEBOOKS_DIR)
    run.add_argument("--kernel", default="python3", help="Jupyter kernel name")
    run.add_argument("--cell-timeout", type=int, default=None, help="seconds per cell (default: no limit)")
    listing = sub.add_parser("list", help="list the notebooks and their parameters")
    listing.add_argument("--notebooks-dir", type=Path, default=NOTEBOOKS_DIR)
    parser.add_argument(VERBOSE_FLAG, action="store_true", help=VERBOSE_HELP)
    args = parser.parse_args(argv)
    setup_logging(args.verbose, fmt="%(message)s")  # papermill's per-notebook INFO lines repeat the summary
    if args.command == "list":
        for nb in discover_notebooks(args.notebooks_dir):
            params = notebook_parameters(nb)
            print(nb.stem)
            for name, info in params.items():
                print(f"    {name} = {info['default']}   {info.get('help', '')}".rstrip())
        return 0
    results = run_notebooks(args.out, args.params, args.only, args.notebooks_dir, args.kernel, args.cell_timeout)
    print(format_summary(results, args.out))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
