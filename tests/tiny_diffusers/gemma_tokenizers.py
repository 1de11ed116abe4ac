"""A tiny Gemma-style tokenizer built offline, and tiny Gemma 2 / Gemma 3 text encoders for it.

The tokenizer is a ``transformers.GemmaTokenizer`` (in transformers v5 also ``GemmaTokenizerFast``): BPE with byte
fallback over a small vocabulary laid out like Gemma's: ``<pad>`` = 0, ``<eos>`` = 1, ``<bos>`` = 2, ``<unk>`` = 3,
``<mask>`` = 4, then Gemma 3's turn and image tokens (atomic special tokens), the 256 ``<0xNN>`` byte tokens, single
characters, and merges that make whole tokens of common prompt words (with the ``▁`` word marker, as in Gemma).
Spaces become ``▁``, ``<bos>`` starts every sequence, no ``<eos>`` is appended; any text (accents, emoji, CJK)
tokenizes, characters outside the vocabulary through their UTF-8 bytes, so ``<unk>`` never appears.

LTX-2 (Gemma 3 12B) and SANA-Video (Gemma 2 2B) both take this tokenizer: each pipeline sets the padding side it
wants itself (LTX-2 left, SANA-Video right). Use ``GEMMA_VOCAB_SIZE`` as the text encoders' ``vocab_size``.
"""

from __future__ import annotations

import string

from .t5_tokenizers import _WORDS as T5_PROMPT_WORDS

PAD, EOS, BOS, UNK, MASK = "<pad>", "<eos>", "<bos>", "<unk>", "<mask>"
GEMMA_EXTRA_SPECIAL_TOKENS = (
    "<start_of_turn>",
    "<end_of_turn>",
    "<start_of_image>",
    "<end_of_image>",
    "<image_soft_token>",
)
_SPACE = "\u2581"  # "▁", Gemma's word marker: the normalizer turns every space into it

# Words of the SANA-Video pipelines' default complex_human_instruction (prepended to every prompt), so that it takes
# a few hundred tokens as with the real vocabulary, not one per character.
_INSTRUCTION_WORDS = (  # noqa: SIM905 - easier to read as one string
    "Given user prompt generate Enhanced that provides detailed visual descriptions suitable video generation "
    "Evaluate level detail If simple focus adding specifics about colors shapes sizes textures motion temporal "
    "relationships create vivid dynamic scenes already refine enhance existing details slightly without "
    "overcomplicating Here examples how transform refine prompts User Prompt cat sleeping small fluffy settling "
    "curled position peacefully falling asleep warm sunny windowsill gentle sunlight filtering through surrounding "
    "pots blooming flowers busy street bustling scene dusk featuring glowing lamps gradually lighting diverse crowd "
    "colorful clothing walking past double decker bus smoothly passing towering glass skyscrapers Please only "
    "description below avoid including any additional commentary evaluations"
).split()


def _vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    tokens = [PAD, EOS, BOS, UNK, MASK, *GEMMA_EXTRA_SPECIAL_TOKENS]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    tokens += [_SPACE, *string.ascii_letters, *string.digits, *string.punctuation, "\n"]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    merges: list[tuple[str, str]] = []
    for word in dict.fromkeys((*T5_PROMPT_WORDS, *_INSTRUCTION_WORDS)):
        if not word.isascii():
            continue  # accented words go through their UTF-8 bytes, as rare words do in the real vocabulary
        current = _SPACE
        for ch in word:
            if current + ch not in vocab:
                merges.append((current, ch))
                vocab[current + ch] = len(vocab)
            current += ch
    return vocab, merges


_VOCAB, _MERGES = _vocab_and_merges()
GEMMA_VOCAB_SIZE = len(_VOCAB)  # token ids are 0 .. GEMMA_VOCAB_SIZE - 1
GEMMA_PAD_ID, GEMMA_EOS_ID, GEMMA_BOS_ID, GEMMA_UNK_ID = 0, 1, 2, 3
GEMMA_BYTE_IDS = range(5 + len(GEMMA_EXTRA_SPECIAL_TOKENS), 5 + len(GEMMA_EXTRA_SPECIAL_TOKENS) + 256)


def build_tiny_gemma_tokenizer():
    """The tiny tokenizer as a ``transformers.GemmaTokenizer``; ``save_pretrained`` writes tokenizer.json + config."""
    from transformers import GemmaTokenizer

    tokenizer = GemmaTokenizer(
        vocab=dict(_VOCAB),
        merges=list(_MERGES),
        add_bos_token=True,
        add_eos_token=False,
        extra_special_tokens=list(GEMMA_EXTRA_SPECIAL_TOKENS),
    )
    ids = (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id, tokenizer.unk_token_id)
    assert ids == (GEMMA_PAD_ID, GEMMA_EOS_ID, GEMMA_BOS_ID, GEMMA_UNK_ID), ids
    assert len(tokenizer) == GEMMA_VOCAB_SIZE, (len(tokenizer), GEMMA_VOCAB_SIZE)
    return tokenizer


GEMMA_HIDDEN_SIZE = 32  # hidden size of both tiny text encoders (the transformers' caption_channels)
GEMMA3_NUM_LAYERS = 2  # LTX-2 stacks the embeddings and every layer's output: text_proj_in_factor = layers + 1


def _text_config_kwargs(num_layers: int) -> dict:
    """The text model's config, the same for Gemma 2 and Gemma 3: two heads of 16 sharing one key/value head."""
    return dict(
        vocab_size=GEMMA_VOCAB_SIZE,
        hidden_size=GEMMA_HIDDEN_SIZE,
        intermediate_size=64,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        query_pre_attn_scalar=16,
        max_position_embeddings=2048,
        sliding_window=64,
        pad_token_id=GEMMA_PAD_ID,
        eos_token_id=GEMMA_EOS_ID,
        bos_token_id=GEMMA_BOS_ID,
    )


def tiny_gemma2_encoder():
    """A seeded tiny random ``Gemma2Model`` (the decoder of gemma-2-2b-it, as SANA-Video uses it)."""
    import torch
    from transformers import Gemma2Config, Gemma2Model

    torch.manual_seed(0)
    return Gemma2Model(Gemma2Config(**_text_config_kwargs(num_layers=2))).eval()


def tiny_gemma3_encoder():
    """A seeded tiny random ``Gemma3ForConditionalGeneration`` (text model and a 8x8-pixel SigLIP vision tower).

    Gemma 3's image tokens are the tokenizer's ``<start_of_image>`` / ``<end_of_image>`` / ``<image_soft_token>``.
    LTX-2 only runs its text model (``output_hidden_states=True``, ``GEMMA3_NUM_LAYERS + 1`` hidden states).
    """
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3TextConfig, SiglipVisionConfig

    torch.manual_seed(0)
    text_config = Gemma3TextConfig(**_text_config_kwargs(num_layers=GEMMA3_NUM_LAYERS))
    vision_config = SiglipVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=8, patch_size=2
    )
    special = {token: _VOCAB[token] for token in GEMMA_EXTRA_SPECIAL_TOKENS}
    config = Gemma3Config(
        text_config=text_config,
        vision_config=vision_config,
        mm_tokens_per_image=4,  # 4x4 patches pooled to 2x2
        boi_token_index=special["<start_of_image>"],
        eoi_token_index=special["<end_of_image>"],
        image_token_index=special["<image_soft_token>"],
    )
    return Gemma3ForConditionalGeneration(config).eval()
