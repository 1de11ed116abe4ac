"""Kinemo Studio: the PySide6 desktop app.

Nothing in this package imports torch at import time: the engine runs in a child process
(see engine_client.py), so the window appears before torch is loaded and the UI thread never
waits for it.
"""
