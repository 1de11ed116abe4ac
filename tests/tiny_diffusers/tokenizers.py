"""A tiny CLIP tokenizer built offline: byte-level BPE over every byte, a few merges, CLIP's special tokens.

Every one of the 256 bytes is in the vocabulary (plain and with CLIP's "</w>" end-of-word suffix), so any text,
accents and emoji included, tokenizes without unknown tokens. The ids are laid out like the real CLIP vocabulary:
bytes, bytes + "</w>", merged tokens, then <|startoftext|> and <|endoftext|> last.
"""

import json
from pathlib import Path

CLIP_MODEL_MAX_LENGTH = 77  # what SD-style pipelines pad prompts to; the text encoder's max_position_embeddings
CLIP_BOS = "<|startoftext|>"
CLIP_EOS = "<|endoftext|>"  # also unk and pad, as in the real CLIP tokenizer

# Words that get merged into whole tokens, so that ordinary prompts use merges (and the merge path is exercised).
_MERGED_WORDS = (
    "a", "an", "the", "of", "in", "on", "and", "with", "at",
    "fox", "cat", "dog", "bird", "horse", "squirrel", "burger", "eating", "running", "walking",
    "painting", "photo", "forest", "city", "night", "sea", "sky", "snow", "red", "blue", "green",
)  # fmt: skip


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable unicode character table, as byte-level BPE (CLIP, Qwen) uses it."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars)))


def _vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    byte_chars = list(bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars]
    merges: list[tuple[str, str]] = []
    for word in _MERGED_WORDS:
        symbols = list(word[:-1]) + [word[-1] + "</w>"]
        current = symbols[0]
        for symbol in symbols[1:]:
            if (current, symbol) not in merges:
                merges.append((current, symbol))
                if current + symbol not in tokens:
                    tokens.append(current + symbol)
            current += symbol
    tokens += [CLIP_BOS, CLIP_EOS]
    return {token: i for i, token in enumerate(tokens)}, merges


_VOCAB, _MERGES = _vocab_and_merges()
CLIP_VOCAB_SIZE = len(_VOCAB)  # 606: give the text encoder exactly this vocab_size
CLIP_BOS_ID = _VOCAB[CLIP_BOS]
CLIP_EOS_ID = _VOCAB[CLIP_EOS]  # also the pad id


def save_tiny_clip_tokenizer(folder: Path) -> None:
    """Save a tiny CLIPTokenizer at folder (vocab.json, merges.txt, tokenizer.json, tokenizer_config.json)."""
    from transformers import CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(_VOCAB, ensure_ascii=False), encoding="utf-8")
    merges_text = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in _MERGES)
    (folder / "merges.txt").write_text(merges_text, encoding="utf-8")
    tokenizer = CLIPTokenizer.from_pretrained(folder, model_max_length=CLIP_MODEL_MAX_LENGTH)
    if len(tokenizer) != CLIP_VOCAB_SIZE:
        raise RuntimeError(f"tiny CLIP tokenizer has {len(tokenizer)} tokens, expected {CLIP_VOCAB_SIZE}")
    tokenizer.save_pretrained(folder)
