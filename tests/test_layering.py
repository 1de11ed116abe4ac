"""Layers stay apart: the engine and export never import Qt; the studio's window never imports torch."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QT_PACKAGES = {"PySide6", "PySide2", "PyQt5", "PyQt6", "shiboken6", "shiboken2", "qtpy", "superqt"}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
            "import_module",
            "__import__",
        ):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.add(node.args[0].value.split(".")[0])
    return found


@pytest.mark.parametrize("package", ["engine", "export"])
def test_engine_and_export_never_import_qt(package):
    sources = sorted((ROOT / package).rglob("*.py"))
    assert sources
    offenders = {str(p.relative_to(ROOT)): sorted(imported_packages(p) & QT_PACKAGES) for p in sources}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_scanner_sees_qt_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f():\n    from PySide6.QtCore import QObject\nimport importlib\nimportlib.import_module('PyQt6.QtGui')\n"
    )
    assert imported_packages(sample) >= {"PySide6", "PyQt6"}


def test_building_the_studio_window_does_not_import_torch(tmp_path):
    code = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "qapp = QApplication([])\n"
        "import app\n"
        "window = app.create_main_window()\n"
        "window.show()\n"
        "qapp.processEvents()\n"
        "heavy = sorted(m for m in ('torch', 'engine.models', 'engine.sampling', 'engine.backends.bundled', 'diffusers') if m in sys.modules)\n"
        "print('loaded:', ','.join(heavy))\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "KINEMO_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "loaded:", result.stdout
