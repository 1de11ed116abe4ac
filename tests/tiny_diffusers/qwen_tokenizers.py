"""A tiny Qwen2-style tokenizer built offline (byte-level BPE, Qwen's special tokens and chat template), and tiny
Qwen2.5-VL text encoders for it, as HunyuanVideo 1.5 and Kandinsky 5 use.

The tokenizer is a ``transformers.Qwen2Tokenizer`` over every byte (so any text, accents and emoji included,
tokenizes), with merges that make whole tokens of common prompt words and of the pipelines' prompt templates.
The templates are tokenized so that their fixed prefix is exactly as long as the pipelines crop it off the text
encoder's output, as with the real Qwen2.5-VL tokenizer: HunyuanVideo 1.5's system prompt (rendered by the chat
template) is 108 tokens (``prompt_template_encode_start_idx``), Kandinsky 5's template prefix 128 (the real
vocabulary splits three of its words, "dynamism", "postprocessing" and "scren", into two tokens; so does this one).
The prompt's own tokens therefore start exactly where the pipelines begin keeping embeddings.

Like the real tokenizer it pads on the right, its eos is ``<|im_end|>`` and its pad ``<|endoftext|>``; the special
tokens come last, in Qwen's order. Use ``QWEN_VOCAB_SIZE`` as the text encoders' ``vocab_size``.
"""

from __future__ import annotations

import regex as re

from .tokenizers import bytes_to_unicode

QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>",
    "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)  # fmt: skip

# Qwen2-VL / Qwen2.5-VL's chat template (text and vision parts), as their tokenizer_config.json carries it.
QWEN_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# The text before the prompt in each pipeline's template (copied from diffusers 0.42; the tests check that the
# pipelines still crop exactly this many tokens).
HUNYUAN15_SYSTEM_MESSAGE = (
    "You are a helpful assistant. Describe the video by detailing the following aspects:         "
    "1. The main content and theme of the video.         "
    "2. The color, shape, size, texture, quantity, text, and spatial relationships of the objects.         "
    "3. Actions, events, behaviors temporal relationships, physical movement changes of the objects.         "
    "4. background environment, light, style and atmosphere.         "
    "5. camera angles, movements, and transitions used in the video."
)
KANDINSKY5_TEMPLATE_PREFIX = "\n".join(
    [
        "<|im_start|>system\nYou are a prompt engineer. Describe the video in detail.",
        "Describe how the camera moves or shakes, describe the zoom and view angle, whether it follows the objects.",
        "Describe the location of the video, main characters or objects and their action.",
        "Describe the dynamism of the video and presented actions.",
        "Name the visual style of the video: whether it is a professional footage, user generated content, some kind "
        "of animation, video game or scren content.",
        "Describe the visual effects, postprocessing and transitions if they are presented in the video.",
        "Pay attention to the order of key actions shown in the scene.<|im_end|>",
        "<|im_start|>user\n",
    ]
)
KANDINSKY5_NEGATIVE_PROMPT = (
    "Static, 2D cartoon, cartoon, 2d animation, paintings, images, worst quality, low quality, ugly, deformed, "
    "walking backwards"
)
_SPLIT_WORDS = {" dynamism": (" dynam", "ism"), " postprocessing": (" post", "processing"), " scren": (" sc", "ren")}

_PROMPT_WORDS = (  # noqa: SIM905 - easier to read as one string
    "a an the and or of in on at to with from by for is are it its this that as into over under up down through "
    "fox dog cat bird fish horse monkey robot car boat ship train city street forest river sea ocean lake "
    "mountain sky cloud sun moon star rain snow fire water tree flower grass field beach road house "
    "man woman child girl boy people person face hand eye light dark night day morning evening "
    "red orange yellow green blue purple pink white black brown gold silver "
    "big small tall little old new young fast slow quick lazy happy calm bright soft "
    "run runs running walk walks walking jump jumps jumping fly flies flying swim swims dance dances dancing "
    "video camera shot scene view close slowly pan zoom cinematic realistic photo painting style "
    "Text Hello text sign"
).split()

_PRETOKENIZE = re.compile(
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)  # Qwen2's pre-tokenizer split
_SPECIALS = re.compile("|".join(re.escape(token) for token in QWEN_SPECIAL_TOKENS))


_BYTES = bytes_to_unicode()


def pretokenize(text: str) -> list[str]:
    """The pieces Qwen2's tokenizer splits text into before BPE (special tokens are pieces of their own)."""
    pieces: list[str] = []
    for part in re.split(f"({_SPECIALS.pattern})", text):
        pieces += [part] if part in QWEN_SPECIAL_TOKENS else _PRETOKENIZE.findall(part)
    return pieces


def _words() -> list[str]:
    """The pieces that become whole tokens, in byte-level form."""
    words: list[str] = []
    for pair in _SPLIT_WORDS.values():
        words += pair
    for text in (HUNYUAN15_SYSTEM_MESSAGE, KANDINSKY5_TEMPLATE_PREFIX, KANDINSKY5_NEGATIVE_PROMPT):
        words += [p for p in pretokenize(text) if p not in QWEN_SPECIAL_TOKENS and p not in _SPLIT_WORDS]
    for word in [*_PROMPT_WORDS, "system", "user", "assistant"]:
        words += [word, " " + word]
    byte_words = ["".join(_BYTES[b] for b in w.encode("utf-8")) for w in dict.fromkeys(words)]
    return [w for w in byte_words if len(w) > 1]


def _vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte vocabulary plus merges that turn every word of _words() into one token (merges added until they do)."""
    from tokenizers.models import BPE

    vocab = {char: i for i, char in enumerate(_BYTES.values())}
    merges: list[tuple[str, str]] = []
    known: set[tuple[str, str]] = set()
    words = _words()
    for _ in range(20):
        model = BPE(vocab=dict(vocab), merges=list(merges))
        pending = [[t.value for t in model.tokenize(w)] for w in words]
        pending = [pieces for pieces in pending if len(pieces) > 1]
        if not pending:
            break
        for pieces in pending:
            current = pieces[0]
            for piece in pieces[1:]:
                if (current, piece) not in known:
                    known.add((current, piece))
                    merges.append((current, piece))
                current += piece
                vocab.setdefault(current, len(vocab))
    else:
        raise RuntimeError("tiny Qwen tokenizer: the merges do not settle")
    for token in QWEN_SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    return vocab, merges


_VOCAB, _MERGES = _vocab_and_merges()
QWEN_VOCAB_SIZE = len(_VOCAB)
QWEN_TOKEN_IDS = {token: _VOCAB[token] for token in QWEN_SPECIAL_TOKENS}
QWEN_PAD_ID = QWEN_TOKEN_IDS["<|endoftext|>"]
QWEN_EOS_ID = QWEN_TOKEN_IDS["<|im_end|>"]


def build_tiny_qwen_tokenizer():
    """The tiny tokenizer as a ``transformers.Qwen2Tokenizer`` with Qwen2.5-VL's chat template."""
    from transformers import Qwen2Tokenizer

    tokenizer = Qwen2Tokenizer(
        vocab=dict(_VOCAB),
        merges=list(_MERGES),
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=[t for t in QWEN_SPECIAL_TOKENS if t not in ("<|endoftext|>", "<|im_end|>")],
        model_max_length=131072,
        padding_side="right",
    )
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    if len(tokenizer) != QWEN_VOCAB_SIZE:
        raise RuntimeError(f"tiny Qwen tokenizer has {len(tokenizer)} tokens, expected {QWEN_VOCAB_SIZE}")
    return tokenizer


def _text_config_kwargs(hidden_size: int, num_layers: int) -> dict:
    head_dim = hidden_size // 2  # two attention heads; mrope sections cover head_dim / 2 (t, h, w)
    quarter = head_dim // 8
    return dict(
        vocab_size=QWEN_VOCAB_SIZE,
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 1000000.0,
            "mrope_section": [quarter, quarter, 2 * quarter],
        },
        bos_token_id=QWEN_PAD_ID,
        eos_token_id=QWEN_EOS_ID,
        pad_token_id=QWEN_PAD_ID,
    )


def tiny_qwen25_vl_text_model(hidden_size: int = 16, num_layers: int = 3):
    """A seeded tiny random ``Qwen2_5_VLTextModel`` (the language model alone, as HunyuanVideo 1.5 uses)."""
    import torch
    from transformers import Qwen2_5_VLTextConfig, Qwen2_5_VLTextModel

    torch.manual_seed(0)
    return Qwen2_5_VLTextModel(Qwen2_5_VLTextConfig(**_text_config_kwargs(hidden_size, num_layers))).eval()


def tiny_qwen25_vl_model(hidden_size: int = 16, num_layers: int = 2):
    """A seeded tiny random ``Qwen2_5_VLForConditionalGeneration`` (vision tower included, as Kandinsky 5 uses)."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config = Qwen2_5_VLConfig(
        text_config=_text_config_kwargs(hidden_size, num_layers),
        vision_config={
            "depth": 1,
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_heads": 2,
            "out_hidden_size": hidden_size,
            "fullatt_block_indexes": [0],
        },
        image_token_id=QWEN_TOKEN_IDS["<|image_pad|>"],
        video_token_id=QWEN_TOKEN_IDS["<|video_pad|>"],
        vision_start_token_id=QWEN_TOKEN_IDS["<|vision_start|>"],
        vision_end_token_id=QWEN_TOKEN_IDS["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    return Qwen2_5_VLForConditionalGeneration(config).eval()
