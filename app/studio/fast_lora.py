"""Fast on a model whose few-step version is a distillation LoRA (the catalog's fast_lora, e.g. lightx2v's 4-step
LoRA for Wan 2.1 14B): switching it on adds that LoRA to the LoRA list and sets the steps and guidance it was
made for; switching it off takes the LoRA out and gives the model's own steps and guidance back. The LoRA list
stays the one truth, so a clip made fast records the LoRA like any other."""

from __future__ import annotations

from PySide6.QtCore import QObject, Slot


class FastLoraSwitch(QObject):
    def __init__(self, switches, loras, numbers, defaults, parent=None):
        """switches: EngineSwitches; loras: LoraPanel; numbers: NumbersPanel; defaults: () -> the model's defaults."""
        super().__init__(parent)
        self._loras, self._numbers, self._defaults = loras, numbers, defaults
        self._switches = switches
        switches.has_lora = lambda source: any(row.source == source and row.enabled for row in loras.rows)
        switches.fastLoraToggled.connect(self._on_toggled)
        loras.changed.connect(self._on_list_changed)

    @Slot(object, bool)
    def _on_toggled(self, lora, on: bool) -> None:
        rows = [row for row in self._loras.rows if row.source == lora.source]
        if on:
            for row in rows:  # a row of it switched off, or at another strength: the LoRA's own takes its place
                self._loras.remove(row)
            self._loras.add(lora.source, lora.scale)
            self._numbers.apply_defaults(lora.settings())
        else:
            for row in rows:
                self._loras.remove(row)
            own = self._defaults()
            self._numbers.apply_defaults({k: own[k] for k in ("steps", "guidance") if k in own})

    @Slot()
    def _on_list_changed(self) -> None:
        """The check box follows the list: removing the LoRA by hand switches Fast off."""
        self._switches.update_fast(self._switches._picker.model)
