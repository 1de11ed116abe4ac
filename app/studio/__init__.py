"""Kinemo Studio: the PySide6 desktop app.

Nothing in this package imports torch at import time: the engine runs in a child process
(see engine_client.py), so the window appears before torch is loaded and the UI thread never
waits for it.

PySide6 6.12 on CPython 3.11 drops references to None and True (see qt_compat.py); the package
protects them before any of its modules uses Qt.
"""

from app.studio.qt_compat import protect_singletons

protect_singletons()
