"""The kit's refusals: the errors a user's mistake raises, each said in one line by the programs.

This module is the bottom floor of the package (``docs/design.md``): every module may raise these, and
it imports nothing of the kit. :func:`vclip.cli.program` turns them into one ``error: ...`` line and
exit status 2; any other exception is a bug and keeps its traceback (``docs/reliability.md``).
"""

from __future__ import annotations

from pathlib import Path


class ConfigError(ValueError):
    """A configuration that cannot run: a bad value, an unknown key, a missing file."""


class CheckpointError(ValueError):
    """A checkpoint or run-directory file the kit refuses to use; the one-line message names the file."""


class RunDirError(ValueError):
    """The run directory cannot be used as asked (in use, already holds a run, settings differ)."""


class DataFormatError(ValueError):
    """A data file that cannot be used; the message names the file, the field and the expectation."""

    def __init__(self, path: str | Path, field_name: str, expected: str, found: str | None = None):
        self.path = str(path)
        self.field = field_name
        self.expected = expected
        self.found = found
        message = f"{self.path}: {field_name}: expected {expected}"
        if found is not None:
            message += f", found {found}"
        super().__init__(message)


__all__ = ["CheckpointError", "ConfigError", "DataFormatError", "RunDirError"]
