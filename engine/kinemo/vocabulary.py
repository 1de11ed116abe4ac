"""The language of the bundled model: its caption grammar, vocabulary and tokenizer.

Pure Python (no torch), so the studio and the CLI can check a prompt without loading the engine.

Object captions follow one grammar::

    a|an <colour> <shape> <motion> on a <background> background

and camera captions describe a move over a picture: ``the camera pans left``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.90, 0.10, 0.10),
    "green": (0.10, 0.80, 0.20),
    "blue": (0.15, 0.30, 1.00),
    "yellow": (0.95, 0.90, 0.10),
    "orange": (1.00, 0.55, 0.05),
    "purple": (0.60, 0.15, 0.80),
    "cyan": (0.10, 0.90, 0.90),
    "white": (1.00, 1.00, 1.00),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
MOTIONS: tuple[str, ...] = (
    "moves left",
    "moves right",
    "moves up",
    "moves down",
    "grows",
    "shrinks",
    "stays still",
)
BACKGROUNDS: dict[str, tuple[float, float, float]] = {
    "black": (0.0, 0.0, 0.0),
    "gray": (0.5, 0.5, 0.5),
    "navy": (0.0, 0.0, 0.35),
    "white": (1.0, 1.0, 1.0),
}
CAMERA_MOVES: tuple[str, ...] = ("pans left", "pans right", "zooms in", "zooms out")  # the pixel model's
# The camera model's moves over a given picture (engine.kinemo.camera_model); their words are all in VOCABULARY.
PICTURE_MOVES: tuple[str, ...] = (
    "pans left", "pans right", "pans up", "pans down", "zooms in", "zooms out", "stays still",
)  # fmt: skip

# Spellings folded onto a word of the vocabulary before tokenizing.
ALIASES: dict[str, str] = {"grey": "gray", "colour": "color"}

PAD, BOS = 0, 1
MAX_TOKENS = 16  # BOS + up to 15 words

_FIXED_WORDS = ("a", "an", "on", "background", "the", "camera")


def _build_vocabulary() -> tuple[str, ...]:
    words = set(_FIXED_WORDS) | set(COLOURS) | set(SHAPES) | set(BACKGROUNDS)
    for phrase in MOTIONS + CAMERA_MOVES:
        words.update(phrase.split())
    return ("<pad>", "<bos>") + tuple(sorted(words))


VOCABULARY: tuple[str, ...] = _build_vocabulary()
TOKEN_IDS: dict[str, int] = {word: i for i, word in enumerate(VOCABULARY)}

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def object_caption(colour: str, shape: str, motion: str, background: str) -> str:
    return f"{article(colour)} {colour} {shape} {motion} on a {background} background"


def camera_caption(move: str) -> str:
    return f"the camera {move}"


def describe_vocabulary() -> str:
    """The bundled models' sentences and words, as `kinemo vocabulary` prints them."""
    lines = [
        "Sentences the bundled models know:",
        "  a|an <colour> <shape> <motion> on a <background> background",
        "  the camera <move>            with a picture (--image): the camera model moves over it",
        "",
        f"  colour:     {', '.join(COLOURS)}",
        f"  shape:      {', '.join(SHAPES)}",
        f"  motion:     {', '.join(MOTIONS)}",
        f"  background: {', '.join(BACKGROUNDS)}",
        f"  move:       {', '.join(PICTURE_MOVES)}",
        f"              (without a picture, the pixel model draws its own picture for: {', '.join(CAMERA_MOVES)})",
    ]
    return "\n".join(lines)


def picture_move(text: str) -> str | None:
    """The camera move a prompt names when its known words form a camera caption ("the camera pans up", or
    "camera pans up"), else None. Words outside the vocabulary are left out here as the tokenizer leaves them
    out (and reports them), so "the camera slowly pans up" is a camera caption too."""
    words = [w for w in split_words(text) if w in TOKEN_IDS]
    if words[:1] == ["the"]:
        words = words[1:]
    if words[:1] != ["camera"]:
        return None
    move = " ".join(words[1:])
    return move if move in PICTURE_MOVES else None


def mentions_camera(text: str) -> bool:
    return "camera" in split_words(text)


def is_visible(colour: str, background: str) -> bool:
    """An object drawn in its background's colour cannot be seen, so no caption asks for one."""
    return COLOURS[colour] != BACKGROUNDS[background]


@dataclass(frozen=True)
class TokenizedPrompt:
    ids: tuple[int, ...]  # BOS first, known words after, at most MAX_TOKENS
    unknown_words: tuple[str, ...]  # words the model does not know, in prompt order
    truncated_words: tuple[str, ...]  # known words past MAX_TOKENS


def split_words(text: str) -> list[str]:
    return [ALIASES.get(w, w) for w in _WORD.findall(text.casefold())]


def tokenize(text: str) -> TokenizedPrompt:
    """Map a prompt to token ids; words outside the vocabulary are returned, never dropped silently."""
    ids, unknown = [BOS], []
    for word in split_words(text):
        if word in TOKEN_IDS:
            ids.append(TOKEN_IDS[word])
        else:
            unknown.append(word)
    kept = ids[:MAX_TOKENS]
    truncated = tuple(VOCABULARY[i] for i in ids[MAX_TOKENS:])
    return TokenizedPrompt(tuple(kept), tuple(unknown), truncated)
