"""The studio names the system packages Qt's xcb platform needs instead of letting Qt abort."""

import os
import subprocess
import sys
import textwrap

from app.studio.system_needs import SKIP_ENV, XCB_LIBRARIES, missing_packages, system_needs_message

X11 = {"DISPLAY": ":0"}


def finder_without(*absent):
    return lambda name: None if name in absent else f"lib{name}.so.0"


def test_missing_xcb_libraries_name_their_packages():
    found = missing_packages(X11, finder_without("xcb-cursor", "xcb-keysyms"), platform="linux")
    assert found == ["libxcb-cursor0", "libxcb-keysyms1"]
    line = system_needs_message(found)
    assert "\n" not in line and line.endswith("sudo apt-get install libxcb-cursor0 libxcb-keysyms1")


def test_nothing_is_missing_when_every_library_is_found():
    assert missing_packages(X11, finder_without(), platform="linux") == []


def test_the_check_runs_only_where_qt_would_load_xcb():
    nothing = finder_without(*XCB_LIBRARIES)
    assert missing_packages(X11, nothing, platform="linux") == list(XCB_LIBRARIES.values())
    assert missing_packages(X11 | {"QT_QPA_PLATFORM": "xcb"}, nothing, platform="linux")
    assert missing_packages({}, nothing, platform="linux") == []  # no display: not xcb
    assert missing_packages(X11 | {"QT_QPA_PLATFORM": "offscreen"}, nothing, platform="linux") == []
    assert missing_packages(X11 | {"QT_QPA_PLATFORM": "wayland"}, nothing, platform="linux") == []
    assert missing_packages(X11, nothing, platform="darwin") == []
    assert missing_packages(X11 | {SKIP_ENV: "1"}, nothing, platform="linux") == []


def test_the_studio_prints_one_line_and_exits_instead_of_starting_qt(data_dir):
    script = textwrap.dedent(
        """
        import ctypes.util
        import sys

        ctypes.util.find_library = lambda name: None if name == "xcb-cursor" else "lib" + name + ".so"
        from app.studio.app import run_studio

        sys.exit(run_studio([]))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"} | {"DISPLAY": ":97"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [system_needs_message(["libxcb-cursor0"])]
