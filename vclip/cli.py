"""The programs' edge: one place that turns a user's mistake into one line and an exit status.

Every program of the kit (``python -m vclip``, ``vclip.pretrain``, ``vclip.finetune``, ``vclip.evaluate``, ``vclip.hub``,
``vclip.extract``, ``vclip.data``, ``vclip.synthetic``, ``vclip.notebooks``) has its ``main`` wrapped by
:func:`program`. A refusal the kit raises on purpose (one of :mod:`vclip.errors`: a ``ConfigError``, a
``RunDirError`` or ``CheckpointError``, a ``DataFormatError``; or a :class:`~vclip.video.VideoDecodeError`) or a path the user
gave that is missing, already there, not readable or of the wrong kind (``FileNotFoundError``,
``FileExistsError``, ``PermissionError``, ``IsADirectoryError``, ``NotADirectoryError``) is printed as
``error: <message>`` on one line of stderr and the program returns :data:`USER_ERROR_STATUS` (2, as
``argparse`` and ``tyro`` use for a bad command line). Anything else is a bug and keeps its traceback.

Under ``torchrun`` each rank that meets the error prints its line and returns; the launcher stops the
other ranks when one exits with a non-zero status, so none waits forever in a collective.

Docs: ``docs/reliability.md`` ("Runs, resume and the programs' edges").
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

USER_ERROR_STATUS = 2
"""The exit status of a program refused for a user's mistake (a bug keeps Python's traceback and status 1)."""

OS_USER_ERRORS = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError)
"""Failures of a path the user named: said in one line, as the kit's own refusals are."""

KIT_ERRORS = (
    ("vclip.errors", "ConfigError"),
    ("vclip.errors", "RunDirError"),
    ("vclip.errors", "CheckpointError"),
    ("vclip.errors", "DataFormatError"),
    ("vclip.video", "VideoDecodeError"),
)
"""The kit's refusal types, by module: looked up only in modules already imported (an error of a module
that was never imported cannot have been raised), so this module imports nothing heavy."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exception types :func:`program` reports in one line (the kit's refusals and path failures)."""
    found = []
    for module_name, name in KIT_ERRORS:
        module = sys.modules.get(module_name)
        if module is not None and isinstance(getattr(module, name, None), type):
            found.append(getattr(module, name))
    return (*found, *OS_USER_ERRORS)


def error_line(error: BaseException, limit: int = 1000) -> str:
    """``error`` as the one line a program prints: ``error: <message>`` (an OSError with its path)."""
    if isinstance(error, OSError) and error.filename is not None and str(error.filename) not in str(error.strerror):
        text = f"{error.filename}: {error.strerror}" if error.strerror else str(error)
    else:
        text = str(error) or type(error).__name__
    line = " ".join(text.split())
    return "error: " + (line if len(line) <= limit else line[: limit - 3] + "...")


def program(main: Callable[..., int | None]) -> Callable[..., int]:
    """Wrap a program's ``main(argv=None)`` so that a user's mistake is one line and status 2 (see the module)."""

    @functools.wraps(main)
    def run(argv: list[str] | None = None) -> int:
        try:
            status = main(argv)
        except Exception as error:
            if not isinstance(error, user_error_types()):  # a bug: its traceback, untouched
                raise
            print(error_line(error), file=sys.stderr)
            return USER_ERROR_STATUS
        return 0 if status is None else status

    return run


__all__ = ["USER_ERROR_STATUS", "error_line", "program", "user_error_types"]
