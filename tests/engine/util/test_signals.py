"""A stop signal that lands inside signals_held() takes effect right after the block, not inside it."""

import signal

import pytest

from engine.util.signals import signals_held


def test_a_signal_waits_for_the_block_then_acts():
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with signals_held():
            signal.raise_signal(signal.SIGINT)
            steps.append("finished inside")
    assert steps == ["finished inside"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers are put back
