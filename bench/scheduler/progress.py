"""What a person sees while `bench run` works.

Two streams, as before: one summary line per finished job on stdout, and progress on
stderr, drawn only when stderr is a terminal. The progress is a `Live` block: a few lines
(the scheduler's bar and its running jobs) redrawn in place at the bottom of the terminal,
cleared before each summary line so that the lines scroll above it. When stdout is a
terminal, summary lines are wrapped to its width between their cells or words, never inside
a word; piped or captured, they stay whole (logs and tests read them).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from typing import TextIO

from tqdm import tqdm

Render = Callable[[int, int], list[str]]  # (columns, rows) -> the lines to draw
INDENT = 8  # continuation lines of a summary line start under its job name ("done    name")
CLEAR = "\r\x1b[J"  # to the start of the line, then erase to the end of the screen


def terminal_size(stream: TextIO) -> tuple[int, int]:
    """Columns and rows of the terminal behind ``stream`` (``COLUMNS``/``LINES`` win, as in
    `shutil.get_terminal_size`, which is also the fallback)."""
    if "COLUMNS" not in os.environ:
        with contextlib.suppress(AttributeError, ValueError, OSError):
            size = os.get_terminal_size(stream.fileno())
            if size.columns > 0:
                return size.columns, size.lines
    size = shutil.get_terminal_size()
    return size.columns, size.lines


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` columns at a word boundary, ending in an ellipsis."""
    if len(text) <= width:
        return text
    cut = text.rfind(" ", 0, width)
    if cut <= 0:  # one word wider than the terminal: nothing better than cutting it
        cut = width - 1
    return text[:cut].rstrip() + "…"


def fit(text: str, width: int, indent: int = INDENT) -> str:
    """``text`` wrapped to ``width`` columns: broken between its cells (runs of two or more
    spaces) where possible, else between words, never inside a word; continuation lines
    are indented by ``indent`` spaces."""
    if len(text) <= width or width <= indent + 10:
        return text
    pad = " " * indent
    parts = re.split(r"( {2,})", text)
    lines = [parts[0]]
    for sep, cell in zip(parts[1::2], parts[2::2], strict=True):
        if len(lines[-1]) + len(sep) + len(cell) <= width:
            lines[-1] += sep + cell
        else:
            lines.append(pad + cell)
    wrapped = (textwrap.wrap(line, width, subsequent_indent=pad, break_long_words=False,
                             break_on_hyphens=False) if len(line) > width else [line] for line in lines)
    return "\n".join(row for rows in wrapped for row in rows)


class Live:
    """A block of lines redrawn in place on ``stream``; the cursor rests at its first line."""

    def __init__(self, render: Render, stream: TextIO, interval: float = 1.0) -> None:
        self.render, self.stream, self.interval = render, stream, interval
        self.lock = threading.RLock()
        self.last = 0.0

    def refresh(self, force: bool = True) -> None:
        """Redraw; without ``force``, only if the last drawing is ``interval`` seconds old."""
        with self.lock:
            now = time.monotonic()
            if not force and now - self.last < self.interval:
                return
            self.last = now
            columns, rows = terminal_size(self.stream)
            # One column spare: a full-width line makes some terminals wrap, and then the
            # cursor no longer returns to the block's first line.
            lines = [clip(line, columns - 1) for line in self.render(columns - 1, rows - 1)][: max(1, rows - 1)]
            up = f"\x1b[{len(lines) - 1}A" if len(lines) > 1 else ""
            self.stream.write(CLEAR + "\n".join(lines) + up + "\r")
            self.stream.flush()

    def clear(self) -> None:
        with self.lock:
            self.stream.write(CLEAR)
            self.stream.flush()

    def write(self, text: str, out: TextIO) -> None:
        """Print ``text`` on ``out`` above the block, then draw the block again below it."""
        with self.lock:
            self.clear()
            out.write(text + "\n")
            out.flush()
            self.refresh()

    def keep_fresh(self, stop: threading.Event) -> None:
        """Redraw every ``interval`` seconds until ``stop`` is set (a background thread's loop:
        elapsed times move on while this process's own thread runs a job)."""
        while not stop.wait(self.interval):
            self.refresh()


class Quiet:
    """Stands in for a `Live` block where nothing is drawn."""

    def refresh(self, force: bool = True) -> None:
        """Nothing to draw."""


class Progress:
    """Reports progress; ``enabled=False`` keeps the summary lines but drops the bars."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._live: Live | None = None

    @contextlib.contextmanager
    def bar(self, total: int, description: str) -> Iterator[Callable[[dict[str, float]], None]]:
        """A bar of ``total`` ticks; the yielded callable advances it, showing the scalars."""
        if not self.enabled:
            yield lambda scalars: None
            return
        with tqdm(total=total, desc=description[:60], leave=False, dynamic_ncols=True) as handle:
            def tick(scalars: dict[str, float]) -> None:
                handle.update(1)
                if scalars and handle.n % 10 == 0:
                    handle.set_postfix({k: f"{v:.3f}" for k, v in scalars.items()}, refresh=False)
            yield tick

    @contextlib.contextmanager
    def live(self, render: Render, background: bool = False) -> Iterator[Live | Quiet]:
        """A `Live` block of ``render``'s lines on stderr for the duration of the block.

        ``background`` redraws it every second from a thread of its own: for a caller that
        runs long jobs in this thread (where it cannot refresh) and never forks meanwhile.
        """
        if not self.enabled:
            yield Quiet()
            return
        display = Live(render, sys.stderr)
        stop = threading.Event()
        thread = threading.Thread(target=display.keep_fresh, args=(stop,), daemon=True, name="progress")
        self._live = display
        try:
            display.refresh()
            if background:
                thread.start()
            yield display
        finally:
            stop.set()
            if thread.is_alive():
                thread.join()
            self._live = None
            display.clear()

    def line(self, text: str) -> None:
        """One summary line on stdout, fitted to the terminal's width when stdout is one."""
        if sys.stdout.isatty():
            text = fit(text, terminal_size(sys.stdout)[0])
        if self._live is not None:
            self._live.write(text, sys.stdout)
            return
        tqdm.write(text, file=sys.stdout)
        sys.stdout.flush()  # one line per finished job, visible at once even when piped
