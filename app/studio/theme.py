"""A readable dark theme: Fusion style, a dark palette and a few rules for the studio's own widgets."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette

BACKGROUND = "#1e2027"
PANEL = "#262932"
BASE = "#16181d"
TEXT = "#e6e8ee"
MUTED = "#9aa1b1"
ACCENT = "#5b8cff"
ERROR = "#ff6b6b"
WARNING = "#f2c14e"

STYLE = f"""
QWidget {{ font-size: 10pt; }}
QLabel#sectionLabel {{ color: {MUTED}; font-weight: 600; text-transform: uppercase; margin-top: 6px; }}
QLabel[level="error"] {{ color: {ERROR}; }}
QLabel[level="warning"] {{ color: {WARNING}; }}
QLabel#messageLabel {{ padding: 6px 8px; border-radius: 4px; background: {PANEL}; }}
QLabel#messageLabel[level="error"] {{ background: #3a2226; color: {ERROR}; }}
QLabel#messageLabel[level="warning"] {{ background: #3a3322; color: {WARNING}; }}
QLabel#messageLabel[level="info"] {{ color: {TEXT}; }}
QFrame#imageDropZone {{ border: 1px dashed #4a5060; border-radius: 6px; background: {BASE}; }}
QFrame#imageDropZone[dragging="true"] {{ border-color: {ACCENT}; }}
QFrame#lastImageDropZone, QFrame#videoInput {{ border: 1px dashed #4a5060; border-radius: 6px; background: {BASE}; }}
QFrame#lastImageDropZone[dragging="true"] {{ border-color: {ACCENT}; }}
QLabel#imageThumbnail, QLabel#lastImageThumbnail, QLabel#videoThumbnail {{
    color: {MUTED}; background: #101216; border-radius: 4px; }}
QLabel#loraEmptyLabel, QLabel#extendsLabel {{ color: {MUTED}; }}
QPushButton {{ padding: 5px 12px; border-radius: 4px; background: #323644; border: 1px solid #3d4252; }}
QPushButton:hover {{ background: #3a3f50; }}
QPushButton:disabled {{ color: #6b7080; background: #2a2d36; }}
QPushButton#generateButton {{ background: {ACCENT}; color: white; font-weight: 600; border: none; padding: 7px 16px; }}
QPushButton#generateButton:hover {{ background: #6d99ff; }}
QPushButton#cancelButton:enabled {{ background: #5a2b31; border-color: #7a3a42; }}
QProgressBar {{ border: 1px solid #3d4252; border-radius: 4px; background: {BASE}; text-align: center; min-height: 18px; }}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 3px; }}
QListWidget {{ background: {BASE}; border: 1px solid #30343f; border-radius: 4px; }}
QListWidget::item {{ padding: 4px; }}
QListWidget::item:selected {{ background: #2f4370; }}
QGroupBox {{ border: 1px solid #30343f; border-radius: 6px; margin-top: 14px; padding-top: 6px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 8px; color: {MUTED}; }}
QScrollArea {{ border: none; }}
QCheckBox::indicator {{ width: 14px; height: 14px; border: 1px solid #7a8194; border-radius: 3px; background: {BASE}; }}
QCheckBox::indicator:checked {{ background: {ACCENT}; border-color: {ACCENT}; }}
"""


def dark_palette() -> QPalette:
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: BACKGROUND,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: BASE,
        QPalette.ColorRole.AlternateBase: PANEL,
        QPalette.ColorRole.ToolTipBase: PANEL,
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.PlaceholderText: "#6f7687",
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: PANEL,
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: ACCENT,
    }
    for role, colour in roles.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6b7080"))
    return palette


def apply_theme(app) -> None:
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    app.setStyleSheet(STYLE)
