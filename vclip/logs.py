"""What the kit's programs print: their own progress lines, not their libraries' logs; one-line usage errors.

Every program (``vclip.pretrain``, ``vclip.finetune``, ``vclip.evaluate``, ``vclip.extract``,
``vclip.data``, ``vclip.synthetic``, ``vclip.notebooks``, ``vclip.hub``) calls :func:`setup_logging`
once at start:

* the kit's loggers (``vclip.*`` and the running program's ``__main__``) log at INFO;
* every other logger (faiss's loader announcing "Loading faiss with AVX512 support", transformers,
  papermill, ...) is shown from WARNING up only, unless ``--verbose`` is given.

:func:`one_line_usage_error` turns tyro's boxed usage error (an unknown option, a value that does not
parse, a bad choice) into the one line the kit's other errors use, keeping tyro's "did you mean"
suggestion; :func:`vclip.config.parse_typed_command` raises it as a :class:`vclip.errors.ConfigError`.
"""

from __future__ import annotations

import logging
import re

PROGRAM_LOGGERS = ("vclip", "__main__")
DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
VERBOSE_FLAG = "--verbose"
VERBOSE_HELP = "also show the libraries' log lines (faiss, transformers, ...)"


def verbose_requested(argv: list[str] | None) -> bool:
    """Whether ``--verbose`` is on the command line (read before the full parse, so that the parse's own
    messages already follow it)."""
    return bool(argv) and VERBOSE_FLAG in argv


def setup_logging(verbose: bool = False, fmt: str = DEFAULT_FORMAT, level: int = logging.INFO) -> None:
    """The one logging setup of the kit's programs (module docstring).

    A handler is added to the root logger only when it has none (so a test's or a notebook's capture
    stays in place); the levels are set every time.
    """
    logging.basicConfig(format=fmt)
    logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)
    for name in PROGRAM_LOGGERS:
        logging.getLogger(name).setLevel(level)


# ------------------------------------------------------------------------------------------ usage errors
_BOX = re.compile(r"[\u2500-\u257f]")  # box-drawing characters: borders and rules
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FLAG = re.compile(r"--[A-Za-z0-9][\w.\-]*")


def one_line_usage_error(boxed: str) -> str:
    """tyro's boxed error message as one line: its title, its first paragraph, and the options it
    suggests ("did you mean --lr?") for an unrecognised one."""
    lines = [_ANSI.sub("", line) for line in boxed.splitlines()]
    title = ""
    paragraphs: list[list[str]] = [[]]
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("\u256d"):  # the top border holds the title: ╭─ Unrecognized options ───╮
            title = _BOX.sub(" ", stripped).strip()
            continue
        is_rule = "\u2500\u2500\u2500" in stripped
        text = _BOX.sub("", stripped).strip()
        if is_rule or stripped.startswith("\u2570"):
            paragraphs.append([])
        elif text:
            paragraphs[-1].append(text)
    paragraphs = [p for p in paragraphs if p]
    if not paragraphs:
        return " ".join(" ".join(lines).split()) or "invalid command line"
    message = " ".join(paragraphs[0])
    suggestions: list[str] = []
    for paragraph in paragraphs[1:]:
        if paragraph[0].lower().startswith(("perhaps you meant", "similar")):
            for entry in paragraph[1:]:
                if entry.startswith("--"):
                    suggestions.extend(flag for flag in _FLAG.findall(entry) if flag not in suggestions)
    if suggestions:
        message += f"; did you mean {' or '.join(suggestions[:4])}?"
    if title and not message.lower().startswith(title.lower()):
        message = f"{title.lower()}: {message}" if not message.lower().startswith("error") else message
    return " ".join(message.split())


__all__ = ["one_line_usage_error", "setup_logging", "verbose_requested"]
