"""Progress bars: ``tqdm.auto`` (a widget in Jupyter, text in a terminal) behind one switch for the kit.

Every bar of the kit is made by :func:`progress_bar`, which a program's own ``progress`` option turns off
one bar at a time, and :func:`set_progress` turns off all at once: :func:`vclip.notebooks.setup_notebook`
does, so that a notebook's committed outputs hold no bars (``pytest --nbval`` compares them).
"""

from __future__ import annotations

from tqdm.auto import tqdm

_ENABLED = True


def set_progress(enabled: bool) -> None:
    """Show (True) or hide (False) every progress bar the kit makes from now on."""
    global _ENABLED
    _ENABLED = bool(enabled)


def progress_enabled() -> bool:
    return _ENABLED


def progress_bar(iterable=None, *, enabled: bool = True, **kwargs) -> tqdm:
    """``tqdm.auto.tqdm(iterable, **kwargs)``, disabled unless both ``enabled`` and the kit's setting are on."""
    return tqdm(iterable, disable=not (enabled and _ENABLED), **kwargs)
