"""Progress bars (tqdm, on stderr) and one summary line per finished job (stdout)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

from tqdm import tqdm


class Progress:
    """Reports progress; ``enabled=False`` keeps the summary lines but drops the bars."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty()

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

    def line(self, text: str) -> None:
        tqdm.write(text, file=sys.stdout)
        sys.stdout.flush()  # one line per finished job, visible at once even when piped
