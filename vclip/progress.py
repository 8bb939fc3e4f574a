"""Progress bars: ``tqdm.auto`` (a widget in Jupyter, text in a terminal) behind one switch for the kit.

Every bar of the kit is made by :func:`progress_bar`, which a program's own ``progress`` option turns off
one bar at a time, and :func:`set_progress` sets for all at once:

* ``True``: tqdm's bars (text on stderr in a terminal, a widget in Jupyter);
* ``False``: none;
* ``"widgets"``: inside a Jupyter kernel, each bar is an ipywidgets bar published as the widget alone,
  without the text copy tqdm adds; elsewhere none. :func:`vclip.notebooks.setup_notebook` chooses it, so a
  notebook shows a live bar while it trains, and its outputs stay a reproducible record: ``pytest --nbval``
  compares text and streams but never widget views, so a cell gives the same compared outputs whether it
  trained (a bar) or reused a finished run (no bar).

:func:`progress_note` says one line in the same places (why a run is about to be trained, for instance).
"""

from __future__ import annotations

import logging
import sys

from tqdm.auto import tqdm

log = logging.getLogger(__name__)

MODES = (True, False, "widgets")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_MODE: bool | str = True


def set_progress(enabled: bool | str) -> None:
    """Show (True) or hide (False) every progress bar the kit makes from now on, or ``"widgets"`` (module doc)."""
    global _MODE
    if enabled not in MODES or (enabled != "widgets" and not isinstance(enabled, bool)):
        raise ValueError(f"set_progress: expected True, False or 'widgets', got {enabled!r}")
    _MODE = enabled


def progress_enabled() -> bool:
    """Whether the kit's bars are drawn at all (in ``"widgets"`` mode: only inside a Jupyter kernel)."""
    return _MODE is True or (_MODE == "widgets" and _in_kernel())


def progress_bar(iterable=None, *, enabled: bool = True, **kwargs) -> tqdm:
    """``tqdm.auto.tqdm(iterable, **kwargs)``, disabled unless both ``enabled`` and the kit's setting are on."""
    if enabled and _MODE == "widgets" and _in_kernel():
        return _widget_bar(iterable, **kwargs)
    return tqdm(iterable, disable=not (enabled and _MODE is True), **kwargs)


def progress_note(text: str) -> None:
    """One line of progress news: a widget in ``"widgets"`` mode, stderr when bars are on, else the log."""
    if _MODE == "widgets" and _in_kernel():
        import ipywidgets

        _display_widget(ipywidgets.HTML(value=f"<tt>{_escape(text)}</tt>"))
    elif _MODE is True:
        print(text, file=sys.stderr)
    else:
        log.info("%s", text)


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in shell.config


def _widget_bar(iterable, **kwargs):
    from tqdm.notebook import tqdm as notebook_tqdm

    bar = notebook_tqdm(iterable, display=False, **kwargs)
    if not bar.disable:
        _display_widget(bar.container)
        bar.displayed = True
    return bar


def _display_widget(widget) -> None:
    """Display ``widget`` as its widget view only (no ``text/plain`` copy for nbval to compare)."""
    from IPython.display import display

    bundle = widget._repr_mimebundle_()
    display({WIDGET_VIEW: bundle[WIDGET_VIEW]}, raw=True)


def _escape(text: str) -> str:
    import html

    return html.escape(text)
