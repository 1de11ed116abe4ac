"""Take docs/studio.png: the studio on a real X server (Xvfb) after generating a clip.

xvfb-run -s "-screen 0 1280x800x24" python docs/make_screenshot.py [--out docs/studio.png]
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("studio.png"))
    parser.add_argument("--prompt", default="a red circle moves right on a black background")
    parser.add_argument("--model", default="kinemo-starter", help="model id or folder")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    os.environ.setdefault("KINEMO_DATA_DIR", tempfile.mkdtemp(prefix="kinemo-shot-"))

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    import app

    window = app.create_main_window()
    window.resize(1280, 800)
    window.show()
    form = window.form
    form.select_model(args.model)
    form.prompt_edit.setPlainText(args.prompt)
    form.steps_spin.setValue(25)
    form.seed_spin.setValue(0)
    form.keep_seed_check.setChecked(True)
    application = QApplication.instance()

    def shoot() -> None:
        screen = window.screen().grabWindow(0)  # the whole X screen, as a person would see it
        screen.save(str(args.out))
        application.quit()

    window.queue.jobSaved.connect(lambda *_: QTimer.singleShot(1500, shoot))
    window.queue.jobFailed.connect(lambda *_: application.exit(1))
    QTimer.singleShot(500, window.generate)
    QTimer.singleShot(180_000, lambda: application.exit(2))
    code = application.exec()
    window.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
