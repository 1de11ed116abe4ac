"""PySide6 6.12 on CPython 3.11 drops a reference to True per emit(); the studio package guards against it."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CODE = """
import app.studio
from PySide6.QtCore import QObject, Signal

class Emitter(QObject):
    fired = Signal()

emitter = Emitter()
for _ in range(20000):  # more emits than True has references on a fresh interpreter
    emitter.fired.emit()
print("ok")
"""


def test_many_emits_do_not_crash_the_interpreter():
    result = subprocess.run(
        [sys.executable, "-c", CODE],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-500:]
    assert "Fatal Python error" not in result.stderr
