"""The sound of the clip in the player (models such as LTX-2 make one), played in step with its frames.

Qt Multimedia plays the clip's WAV. The frames keep their own timer: the sound starts with frame 0, follows
pauses and seeks, and stays silent while the preview runs at another rate than the clip's (sound cannot be
sped up without changing its pitch). Qt Multimedia needs the system's PulseAudio client library on Linux;
where it cannot load, the clip plays silent and `unavailable` says why.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QUrl


def _load_multimedia():
    """(QMediaPlayer, QAudioOutput) classes, or the one-line reason they cannot be loaded."""
    try:
        from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer
    except ImportError as exc:
        return None, f"sound cannot play here: Qt Multimedia did not load ({exc})"
    return (QMediaPlayer, QAudioOutput), None


class SoundTrack(QObject):
    """One clip's sound: set(), then play_from(seconds) / pause() as the frames play."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.path: Path | None = None
        self.unavailable: str | None = None  # why sound cannot play on this system, once that is known
        self._player = None
        self._output = None

    @property
    def player(self):
        """The QMediaPlayer (made on first use), or None where Qt Multimedia cannot load."""
        if self._player is None and self.unavailable is None:
            classes, self.unavailable = _load_multimedia()
            if classes is not None:
                player_class, output_class = classes
                self._player, self._output = player_class(self), output_class(self)
                self._player.setAudioOutput(self._output)
        return self._player

    def set(self, path: Path | None) -> None:
        """The clip's WAV, or None for a silent clip."""
        self.path = Path(path) if path is not None else None
        player = self.player if self.path is not None else self._player
        if player is not None:
            player.stop()
            player.setSource(QUrl.fromLocalFile(str(self.path)) if self.path is not None else QUrl())

    def play_from(self, seconds: float) -> None:
        player = self._player if self.path is not None else None
        if player is not None:
            player.setPosition(max(0, round(seconds * 1000)))
            player.play()

    def pause(self) -> None:
        if self._player is not None:
            self._player.pause()

    @property
    def playing(self) -> bool:
        if self._player is None:  # Qt Multimedia may not load here: never import it for nothing
            return False
        from PySide6.QtMultimedia import QMediaPlayer

        return self._player.playbackState() == QMediaPlayer.PlaybackState.PlayingState

    @property
    def seconds(self) -> float:
        """Where the sound is, in seconds (0 when none plays)."""
        return self._player.position() / 1000 if self._player is not None else 0.0
