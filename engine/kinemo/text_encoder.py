"""A small text encoder trained together with the bundled video model."""

from __future__ import annotations

import torch
from torch import nn

from engine.kinemo.vocabulary import MAX_TOKENS, PAD, VOCABULARY


class TextEncoder(nn.Module):
    """token ids (b, l) -> token states (b, l, d), a padding mask (b, l) and a pooled vector (b, d)."""

    def __init__(self, dim: int = 128, depth: int = 2, heads: int = 4, vocab_size: int = len(VOCABULARY)):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, dim, padding_idx=PAD)
        self.position_embedding = nn.Parameter(torch.randn(MAX_TOKENS, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        valid = ids != PAD  # (b, l)
        x = self.token_embedding(ids) + self.position_embedding[: ids.shape[1]]
        x = self.norm(self.layers(x, src_key_padding_mask=~valid))
        weights = valid.float()[..., None]
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1)
        return x, valid, pooled


def token_batch(id_sequences: list[tuple[int, ...]]) -> torch.Tensor:
    """Pad token id sequences to one (b, l) tensor."""
    length = max(len(ids) for ids in id_sequences)
    out = torch.full((len(id_sequences), length), PAD, dtype=torch.long)
    for row, ids in enumerate(id_sequences):
        out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out
