"""Test doubles that count their calls (shared by the memory, LLM and training tests)."""

from __future__ import annotations

import numpy as np

from empo_gym.memory import HashingEmbedder


class CountingEmbedder(HashingEmbedder):
    """The hashing embedder, remembering every text it was asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.texts.extend(texts)
        return super().__call__(texts)
