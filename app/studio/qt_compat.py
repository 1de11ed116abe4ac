"""Work around a reference-count defect of PySide6 6.12 on CPython 3.11 and older.

The PySide6 6.12 wheels are abi3 builds that treat None, True and False as immortal, as they are
from CPython 3.12 on (PEP 683): a wrapped C++ method that returns void hands back None, and
`SignalInstance.emit()` hands back True, without taking a reference. On CPython 3.11 every such
call therefore drops one reference that was never taken: each `label.setText(...)` costs None one,
each `signal.emit(...)` costs True one. A session that emits a few thousand signals from Python
(the model checks, a generation's progress and previews, the player's frameChanged at the
playback rate) ends in "Fatal Python error: bool_dealloc: deallocating True or False" while the
interpreter finalizes, and a long enough one in "none_dealloc" while it runs.

protect_singletons() does for these three objects what CPython 3.12 does for them: it gives them
a reference count so large that no number of stray decrements can bring it to zero. They are
static objects that are never freed, so nothing else changes; on CPython 3.12+ it does nothing.
"""

from __future__ import annotations

import ctypes
import sys

# far more stray decrements than any session makes (a million a second for nine years),
# far below the overflow of a 64-bit Py_ssize_t
_PROTECTION = 1 << 48

_protected = False


def singletons_are_immortal() -> bool:
    """True where the interpreter already makes None, True and False immortal (CPython 3.12+)."""
    return sys.implementation.name != "cpython" or sys.version_info >= (3, 12)


def protect_singletons() -> bool:
    """Make None, True and False immortal on CPython < 3.12 (once); True if it did so now."""
    global _protected
    if _protected or singletons_are_immortal():
        return False
    counts = [ctypes.c_ssize_t.from_address(id(singleton)) for singleton in (None, True, False)]
    # ob_refcnt is the first field of an object in a release build; check before writing to it
    if any(
        abs(count.value - sys.getrefcount(singleton)) > 100 for count, singleton in zip(counts, (None, True, False))
    ):
        return False
    for count in counts:
        count.value += _PROTECTION
    _protected = True
    return True
