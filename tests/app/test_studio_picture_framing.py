"""A first-frame picture in the studio: the size takes its aspect, the thumbnail shows it framed at the chosen
size, and a camera move without a picture is pointed out."""

import numpy as np
from PIL import Image
from PySide6.QtWidgets import QWidget
from studio_helpers import drop

from app.studio.drop_zone import framed
from app.studio.numbers_panel import NumbersPanel
from app.studio.request_form import CAMERA_NEEDS_PICTURE
from engine.api.request import GenerationRequest
from engine.kinemo.vocabulary import PICTURE_MOVES
from engine.registry.model_options import ModelOptions


def _stripes(path, size=(800, 400)):
    """A wide picture: red left quarter, green middle half, blue right quarter."""
    w, h = size
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, : w // 4] = (255, 0, 0)
    rgb[:, w // 4 : 3 * w // 4] = (0, 255, 0)
    rgb[:, 3 * w // 4 :] = (0, 0, 255)
    Image.fromarray(rgb).save(path)
    return str(path)


def _size(form):
    return form.width_spin.value(), form.height_spin.value()


def _accept(qtbot, zone, path):
    zone.set_image(path)
    qtbot.waitUntil(lambda: zone.image_path == path and not zone.checking)


def _thumb_colour(zone, x, y):
    image = zone.thumbnail.pixmap().toImage()
    colour = image.pixelColor(x, y)
    return colour.red(), colour.green(), colour.blue()


def test_a_dropped_picture_sets_the_size_to_its_aspect(qtbot, window, tmp_path):
    form = window.form
    zone = window.findChild(QWidget, "imageDropZone")
    picture = _stripes(tmp_path / "wide.png", (800, 400))
    assert drop(zone, [picture]) == (True, True)
    qtbot.waitUntil(lambda: zone.image_path == picture)
    assert _size(form) == (512, 256), "size_for_picture: the picture's aspect, 512 px on its longer side"
    assert zone.thumbnail.toolTip() == "framed at 512 x 256"
    pixmap = zone.thumbnail.pixmap()
    assert abs(pixmap.width() / pixmap.height() - 2.0) < 0.05
    form.prompt_edit.setPlainText("the camera pans left")
    request = form.request()
    assert (request.width, request.height) == (512, 256)

    small = _stripes(tmp_path / "tall.png", (60, 90))
    _accept(qtbot, zone, small)
    assert _size(form) == (60, 90), "a picture smaller than 512 px keeps its own size"


def test_a_size_set_by_hand_since_the_last_picture_is_kept(qtbot, window, tmp_path):
    form, zone = window.form, window.form.drop_zone
    form.width_spin.setValue(96)
    form.height_spin.setValue(96)
    _accept(qtbot, zone, _stripes(tmp_path / "a.png", (800, 400)))
    assert _size(form) == (96, 96), "set by hand before the picture: kept"
    assert zone.thumbnail.toolTip() == "framed at 96 x 96"

    _accept(qtbot, zone, _stripes(tmp_path / "b.png", (400, 800)))
    assert _size(form) == (256, 512), "nothing set since the last picture: the new picture's aspect"

    form.height_spin.setValue(128)
    _accept(qtbot, zone, _stripes(tmp_path / "c.png", (800, 400)))
    assert _size(form) == (256, 128)


def test_clearing_the_picture_keeps_the_size(qtbot, window, tmp_path):
    form, zone = window.form, window.form.drop_zone
    _accept(qtbot, zone, _stripes(tmp_path / "wide.png", (600, 300)))
    assert _size(form) == (512, 256)
    zone.clear_button.click()
    assert zone.image_path is None and _size(form) == (512, 256)
    assert zone.thumbnail.toolTip() == ""


def test_a_refused_picture_leaves_the_size_alone(qtbot, window, tmp_path):
    form, zone = window.form, window.form.drop_zone
    before = _size(form)
    with qtbot.waitSignal(zone.refused):
        zone.set_image(str(tmp_path / "gone.png"))
    assert _size(form) == before


def test_a_restored_request_keeps_its_size_with_its_picture(qtbot, window, tmp_path):
    form, zone = window.form, window.form.drop_zone
    picture = _stripes(tmp_path / "wide.png", (800, 400))
    form.set_request(GenerationRequest(prompt="the camera pans left", image=picture, width=128, height=96))
    qtbot.waitUntil(lambda: zone.image_path == picture and not zone.checking)
    assert _size(form) == (128, 96)
    assert zone.thumbnail.toolTip() == "framed at 128 x 96"


def test_the_thumbnail_is_framed_at_the_chosen_size(qtbot, window, tmp_path):
    form, zone = window.form, window.form.drop_zone
    _accept(qtbot, zone, _stripes(tmp_path / "wide.png", (800, 400)))
    pixmap = zone.thumbnail.pixmap()
    assert _thumb_colour(zone, 2, pixmap.height() // 2)[0] > 200, "2:1: the red left quarter shows"

    form.width_spin.setValue(256)  # square: the centre half of the picture, all green
    assert zone.thumbnail.toolTip() == "framed at 256 x 256"
    pixmap = zone.thumbnail.pixmap()
    assert pixmap.width() == pixmap.height()
    for x in (1, pixmap.width() - 2):
        red, green, blue = _thumb_colour(zone, x, pixmap.height() // 2)
        assert green > 200 and red < 60 and blue < 60, "the sides are cropped away"


def test_framed_crops_the_centre_like_the_engine():
    thumb = np.arange(20 * 40 * 3, dtype=np.uint8).reshape(20, 40, 3)
    assert framed(thumb, 100, 100).shape == (20, 20, 3)
    assert np.array_equal(framed(thumb, 100, 100), thumb[:, 10:30])
    assert framed(thumb, 400, 100).shape == (10, 40, 3)
    assert np.array_equal(framed(thumb, 400, 100), thumb[5:15])
    assert framed(thumb, 2, 1).shape == (20, 40, 3)


def test_the_picture_size_is_snapped_to_the_model(qtbot):
    options = ModelOptions(model="m", label="m", kind="hub", family="", tasks=("t2v", "i2v"), size_multiple=64)
    numbers = NumbersPanel(lambda: options)
    assert numbers.take_picture_size(1000, 700)  # size_for_picture: 512 x 358
    assert (numbers.width_spin.value(), numbers.height_spin.value()) == (512, 384)
    numbers.width_spin.setValue(640)
    assert not numbers.take_picture_size(700, 1000), "set by hand since the last picture"
    assert numbers.take_picture_size(700, 1000)
    assert (numbers.width_spin.value(), numbers.height_spin.value()) == (384, 512)


def test_the_camera_picker_offers_the_picture_moves(window):
    combo = window.findChild(QWidget, "cameraCombo")
    assert tuple(combo.itemData(i) for i in range(1, combo.count())) == PICTURE_MOVES
    assert combo.itemData(0) is None


def test_a_camera_move_without_a_picture_is_pointed_out(qtbot, window, tmp_path):
    form = window.form
    combo = window.findChild(QWidget, "cameraCombo")
    shown = []
    window.messageShown.connect(lambda level, text: shown.append((level, text)))
    combo.setCurrentIndex(combo.findData("zooms in"))
    combo.activated.emit(combo.currentIndex())
    assert shown == [("info", CAMERA_NEEDS_PICTURE)]
    assert window.message == CAMERA_NEEDS_PICTURE
    assert window.message_label.property("level") == "info"
    assert form.prompt_edit.toPlainText() == "the camera zooms in"

    combo.setCurrentIndex(0)
    combo.activated.emit(0)
    assert len(shown) == 1, "no move: nothing to say"

    _accept(qtbot, form.drop_zone, _stripes(tmp_path / "wide.png", (200, 100)))
    shown.clear()
    combo.setCurrentIndex(combo.findData("pans left"))
    combo.activated.emit(combo.currentIndex())
    assert shown == [] and form.prompt_edit.toPlainText() == "the camera pans left"
