"""Holding back Ctrl+C, SIGTERM and SIGHUP for the few statements that must not be cut in half.

Starting the encoder (a child process is forked, then recorded) and publishing a finished file (rename) are
such statements: a stop that lands between the fork and the record leaves an encoder nobody stops, which later
writes an empty file; here the stop waits until the statements are done, then takes effect as usual.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

HELD = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextmanager
def signals_held() -> Iterator[None]:
    """Within the block, stop signals are noted, not acted on; afterwards each one noted is raised again."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives Python's signal handlers
        return
    noted: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, frame: noted.append(signum)) for signum in HELD}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(noted):
            signal.raise_signal(signum)
