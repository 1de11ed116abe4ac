"""A stop signal that lands inside signals_held() takes effect right after the block, not inside it."""

import signal

import pytest

from engine.util.signals import signals_held


@pytest.fixture(autouse=True)
def python_handles_sigint():
    """Python's own SIGINT handler, as a terminal gives it: a shell starts background jobs with SIGINT ignored,
    and Python then leaves it ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_signal_waits_for_the_block_then_acts():
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with signals_held():
            signal.raise_signal(signal.SIGINT)
            steps.append("finished inside")
    assert steps == ["finished inside"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers are put back
