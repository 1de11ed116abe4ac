"""Starting the studio: the QApplication, the theme, the window, and the engine warm-up."""

from __future__ import annotations

import os
import signal
import sys
import time

ORGANISATION = "Kinemo"
APPLICATION = "Kinemo Studio"
EXIT_AFTER_SHOW_ENV = "KINEMO_STUDIO_EXIT_AFTER_SHOW"

_app = None


def ensure_application(argv: list[str] | None = None):
    """The QApplication (created once, themed); SystemNeedsMissing when Qt's platform plugin would not load."""
    global _app
    from PySide6.QtWidgets import QApplication

    from app.studio.theme import apply_theme

    app = QApplication.instance()
    if app is None:
        from app.studio.system_needs import check_system_needs

        check_system_needs()  # Qt would abort with a generic message; SystemNeedsMissing names the packages
        app = QApplication(argv if argv is not None else sys.argv[:1])
    if _app is not app:
        _app = app
        app.setOrganizationName(ORGANISATION)
        app.setApplicationName(APPLICATION)
        apply_theme(app)
    return app


def seconds_since_process_start() -> float | None:
    """Wall time since this process was created (Linux /proc), or None where unknown."""
    try:
        with open("/proc/self/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        started_ticks = int(fields[19])  # field 22: start time after boot, in clock ticks
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
        return uptime - started_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _report_show_and_quit(app) -> None:
    """KINEMO_STUDIO_EXIT_AFTER_SHOW=1: print when the window was first shown, then quit."""
    import json

    sys.stdout.write(
        json.dumps(
            {
                "shown_unix": time.time(),
                "since_process_start": seconds_since_process_start(),
                "torch_loaded": "torch" in sys.modules,
            }
        )
        + "\n"
    )
    sys.stdout.flush()
    app.quit()


class _Launcher:
    """What happens once the window is first shown (bound methods only: PySide6 6.12 can crash
    deleting widgets whose signals are connected to lambdas)."""

    def __init__(self, app, window, exit_after_show: bool):
        from PySide6.QtCore import QTimer

        self.app, self.window, self.exit_after_show = app, window, exit_after_show
        window.firstShown.connect(self.first_shown)
        # Ctrl+C in the terminal closes the window like the close button (Python sees signals only
        # when it runs, so a timer lets it run a few times a second)
        signal.signal(signal.SIGINT, self.interrupted)
        self.signal_timer = QTimer()
        self.signal_timer.timeout.connect(self.let_python_run)
        self.signal_timer.start(250)

    def interrupted(self, signum, frame) -> None:
        self.window.close()
        self.app.quit()

    def let_python_run(self) -> None:
        pass

    def first_shown(self) -> None:
        from PySide6.QtCore import QTimer

        QTimer.singleShot(0 if self.exit_after_show else 200, self.after_show)

    def after_show(self) -> None:
        if self.exit_after_show:
            _report_show_and_quit(self.app)
            return
        # start the engine process (and its torch import) in the background: the first job starts sooner
        from app.studio.worker import FunctionWorker, start_worker

        worker = FunctionWorker(self.window.engine.start, True)
        worker.errored.connect(self.window._on_warm_up_failed)
        self.warm_up_worker = worker
        start_worker(worker)


def run_studio(argv: list[str] | None = None) -> int:
    """Open the studio and run until it is closed; returns the exit status (1, with one line naming the
    packages to install, when Qt's platform plugin would not load)."""
    from app.studio.system_needs import SystemNeedsMissing

    try:
        app = ensure_application([sys.argv[0], *(argv or [])])
    except SystemNeedsMissing as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    from app.studio.engine_client import shared_engine
    from app.studio.main_window import MainWindow

    window = MainWindow()
    exit_after_show = os.environ.get(EXIT_AFTER_SHOW_ENV) == "1"
    launcher = _Launcher(app, window, exit_after_show)
    if not exit_after_show:
        _install_excepthook(window)
    window.show()
    try:
        return app.exec()
    finally:
        shared_engine().shutdown()
        del launcher
        window.deleteLater()


def _install_excepthook(window) -> None:
    """An unexpected exception in a slot shows up in the window instead of vanishing or crashing it."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        try:
            window.show_message("error", f"Unexpected error: {kind.__name__}: {value}")
        except RuntimeError:
            pass  # the window is gone

    sys.excepthook = hook
