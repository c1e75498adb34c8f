"""Tokenizers: the built-in byte-level one, and a thin wrapper over a local Hugging Face one.

The byte tokenizer maps each UTF-8 byte to its own id (0..255) and adds three specials.
It needs no files and no vocabulary download, and it is the same on every machine,
which the deterministic base model and the verbatim-span index both rely on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class Tokenizer(Protocol):
    """What training, serving and attribution need from a tokenizer."""

    pad_id: int
    bos_id: int
    eos_id: int
    vocab_size: int

    def encode(self, data: bytes) -> list[int]:
        """Token ids of raw bytes (no specials added)."""
        ...

    def decode(self, ids: list[int]) -> bytes:
        """Bytes of token ids; specials are dropped."""
        ...

    def pieces(self, ids: list[int]) -> list[str]:
        """The text of each token on its own (for word boundaries)."""
        ...


@dataclass(frozen=True)
class ByteTokenizer:
    """One token per byte, plus PAD=256, BOS=257, EOS=258."""

    pad_id: int = 256
    """Padding id; never predicted, masked out of attention and loss."""
    bos_id: int = 257
    """Begin-of-sequence id, put before every prompt and training example."""
    eos_id: int = 258
    """End-of-sequence id, put after every training example; generation stops on it."""
    vocab_size: int = 259
    """Number of ids."""

    def encode(self, data: bytes) -> list[int]:
        return list(data)

    def decode(self, ids: list[int]) -> bytes:
        return bytes(i for i in ids if 0 <= i < 256)

    def pieces(self, ids: list[int]) -> list[str]:
        return [chr(i) if 0 <= i < 256 else "" for i in ids]


class HFTokenizer:
    """A local Hugging Face tokenizer behind the Tokenizer protocol (never downloads)."""

    def __init__(self, path: str) -> None:
        from transformers import AutoTokenizer

        self._tok: Any = AutoTokenizer.from_pretrained(path, local_files_only=True)
        eos = self._tok.eos_token_id
        self.eos_id = int(eos if eos is not None else 0)
        bos = self._tok.bos_token_id
        self.bos_id = int(bos if bos is not None else self.eos_id)
        pad = self._tok.pad_token_id
        self.pad_id = int(pad if pad is not None else self.eos_id)
        self.vocab_size = int(len(self._tok))

    def encode(self, data: bytes) -> list[int]:
        return list(self._tok.encode(data.decode("utf-8", "replace"), add_special_tokens=False))

    def decode(self, ids: list[int]) -> bytes:
        special = {self.pad_id, self.bos_id, self.eos_id}
        text = self._tok.decode([i for i in ids if i not in special])
        return str(text).encode("utf-8")

    def pieces(self, ids: list[int]) -> list[str]:
        return [str(self._tok.decode([i])) for i in ids]
