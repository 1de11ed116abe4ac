"""What the studio needs from the system before Qt starts: on Linux with X11, the xcb libraries Qt's xcb
platform plugin loads.

Without them Qt prints a generic "could not load the Qt platform plugin" and aborts; checking first turns
that into one line naming the Debian/Ubuntu packages to install. Pure Python: no Qt.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Callable, Mapping


class SystemNeedsMissing(RuntimeError):
    """Qt's platform plugin would not load; the message is the one line naming what to install."""


SKIP_ENV = "KINEMO_SKIP_SYSTEM_CHECK"  # for systems whose libraries the finder cannot see

# library name for ctypes.util.find_library -> the Debian package that holds it (Qt 6's xcb plugin needs all)
XCB_LIBRARIES = {
    "xcb-cursor": "libxcb-cursor0",
    "xcb-icccm": "libxcb-icccm4",
    "xcb-keysyms": "libxcb-keysyms1",
    "xcb-image": "libxcb-image0",
    "xcb-render-util": "libxcb-render-util0",
    "xcb-randr": "libxcb-randr0",
    "xcb-shape": "libxcb-shape0",
    "xcb-xkb": "libxcb-xkb1",
    "xkbcommon-x11": "libxkbcommon-x11-0",
}


def uses_xcb(env: Mapping[str, str], platform: str = sys.platform) -> bool:
    """Qt will pick its xcb plugin: Linux, QT_QPA_PLATFORM unset or xcb, and an X display."""
    chosen = env.get("QT_QPA_PLATFORM", "").strip().lower()
    return platform.startswith("linux") and chosen in ("", "xcb") and bool(env.get("DISPLAY"))


def missing_packages(
    env: Mapping[str, str] | None = None,
    find_library: Callable[[str], str | None] = ctypes.util.find_library,
    platform: str = sys.platform,
) -> list[str]:
    """The packages whose libraries Qt's xcb plugin would fail to load ([] when xcb is not used)."""
    env = os.environ if env is None else env
    if env.get(SKIP_ENV) == "1" or not uses_xcb(env, platform):
        return []
    return [package for library, package in XCB_LIBRARIES.items() if not find_library(library)]


def system_needs_message(packages: list[str]) -> str:
    """One line: what to install."""
    return (
        "kinemo studio: Qt's xcb platform needs system libraries that are missing; install them with: "
        f"sudo apt-get install {' '.join(packages)}"
    )


def check_system_needs() -> None:
    """SystemNeedsMissing naming the packages to install, if any are missing."""
    packages = missing_packages()
    if packages:
        raise SystemNeedsMissing(system_needs_message(packages))
