"""A tiny T5-style (Unigram / SentencePiece-like) tokenizer built offline, and tiny T5 / UMT5 text encoders for it.

Layout follows T5: ``<pad>`` = 0, ``</s>`` = 1, ``<unk>`` = 2, a ``▁`` metaspace word marker, ``</s>`` appended to
every sequence. Every character missing from the vocabulary (most non-ASCII, emoji, ...) becomes ``<unk>``, so any
text tokenizes. The vocabulary is small and fixed: use ``T5_VOCAB_SIZE`` as the text encoders' ``vocab_size``.
"""

from __future__ import annotations

import json
import math
import string
from pathlib import Path

PAD, EOS, UNK = "<pad>", "</s>", "<unk>"
_SPACE = "\u2581"  # "▁", SentencePiece's word-boundary marker

_WORDS = (  # noqa: SIM905 - easier to read as one string
    "a an the and or of in on at to with from by for is are was be it its this that as into over under up down "
    "fox dog cat bird fish horse monkey robot car boat ship train plane city street forest river sea ocean lake "
    "mountain sky cloud sun moon star rain snow fire water tree flower grass field beach desert road house "
    "man woman child girl boy people person face hand eye light dark night day morning evening "
    "red orange yellow green blue purple pink white black brown gold silver "
    "big small tall little old new young fast slow quick lazy happy calm bright soft "
    "run runs running walk walks walking jump jumps jumping fly flies flying swim swims dance dances dancing "
    "sit sits stand stands look looks eat eats play plays move moves turn turns "
    "video camera shot scene view close slowly pan zoom cinematic realistic photo painting style "
    "ein eine der die das und im Fuchs Hund läuft über"
).split()
_NON_ASCII_CHARS = "äöüÄÖÜßéèêàâçñ"


def _pieces() -> list[tuple[str, float]]:
    """(piece, log-probability) in id order: specials, the ``▁`` marker, single characters, then whole words."""
    pieces: list[tuple[str, float]] = [(PAD, 0.0), (EOS, 0.0), (UNK, 0.0), (_SPACE, -2.0)]
    seen = {p for p, _ in pieces}

    def add(piece: str, score: float) -> None:
        if piece not in seen:
            seen.add(piece)
            pieces.append((piece, score))

    for ch in string.ascii_letters + string.digits + string.punctuation + _NON_ASCII_CHARS:
        add(ch, -8.0)  # characters: always available, but expensive, so whole words win
    for ch in string.ascii_letters:
        add(_SPACE + ch, -7.0)
    for i, word in enumerate(_WORDS):
        add(_SPACE + word, -3.0 - math.log1p(i) / 10)
    return pieces


T5_VOCAB = _pieces()
T5_VOCAB_SIZE = len(T5_VOCAB)  # token ids are 0 .. T5_VOCAB_SIZE - 1; text encoders use vocab_size=T5_VOCAB_SIZE
T5_PAD_ID, T5_EOS_ID, T5_UNK_ID = 0, 1, 2


def build_tiny_t5_tokenizer():
    """The tiny tokenizer as a ``transformers.T5TokenizerFast`` (in transformers v5 an alias of ``T5Tokenizer``)."""
    from transformers import T5TokenizerFast

    tokenizer = T5TokenizerFast(vocab=list(T5_VOCAB), extra_ids=0, model_max_length=512)
    assert len(tokenizer) == T5_VOCAB_SIZE, (len(tokenizer), T5_VOCAB_SIZE)
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (T5_PAD_ID, T5_EOS_ID, T5_UNK_ID)
    return tokenizer


def save_tiny_t5_tokenizer(folder: Path, cls_name: str = "T5TokenizerFast") -> None:
    """Save the tiny T5 tokenizer at folder (``tokenizer.json`` + ``tokenizer_config.json`` + special tokens).

    ``cls_name`` is written as ``tokenizer_class`` in ``tokenizer_config.json``, which is what
    ``AutoTokenizer.from_pretrained(folder)`` resolves; both ``T5TokenizerFast`` and ``T5Tokenizer`` load it.
    """
    folder = Path(folder)
    tokenizer = build_tiny_t5_tokenizer()
    tokenizer.save_pretrained(folder)
    config_file = folder / "tokenizer_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["tokenizer_class"] = cls_name
    config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


T5_D_MODEL = 32  # hidden size of the tiny text encoders (the transformers' text_dim / caption_channels / ...)


def tiny_t5_encoder(*, umt5: bool = False):
    """A seeded tiny random ``T5EncoderModel`` (or ``UMT5EncoderModel``, as Wan uses) matching the tokenizer."""
    import torch
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    config_class, model_class = (UMT5Config, UMT5EncoderModel) if umt5 else (T5Config, T5EncoderModel)
    torch.manual_seed(0)
    config = config_class(
        vocab_size=T5_VOCAB_SIZE,
        d_model=T5_D_MODEL,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=16,
        dropout_rate=0.0,
        pad_token_id=T5_PAD_ID,
        eos_token_id=T5_EOS_ID,
        decoder_start_token_id=T5_PAD_ID,
    )
    return model_class(config).eval()
