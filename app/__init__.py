"""Kinemo's applications: the `kinemo` command line (app.cli) and the desktop studio (app.studio).

Nothing is imported here eagerly: the CLI must not pay for Qt, the studio must not wait for torch.
"""


def create_main_window():
    """Build the studio's main window without showing it (creates the QApplication if needed)."""
    from app.studio.app import ensure_application
    from app.studio.main_window import MainWindow

    ensure_application()
    return MainWindow()


def run_studio(argv=None) -> int:
    from app.studio.app import run_studio as run

    return run(argv)
