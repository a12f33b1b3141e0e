"""Per-sample random streams that do not depend on worker count or processing order."""

from __future__ import annotations

import hashlib

import numpy as np


def stable_hash(text: str) -> int:
    """A 64-bit hash of `text` that is the same in every process and Python version (unlike `hash()`)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def spawn_key(source_id: str, repeat: int) -> tuple[int, int]:
    """The SeedSequence spawn key of one sample: (stable hash of its source id, repeat index)."""
    return (stable_hash(source_id), int(repeat))


def sample_rng(seed: int, source_id: str, repeat: int) -> np.random.Generator:
    """The one random stream of a sample; every random choice for that sample is drawn from it."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=spawn_key(source_id, repeat)))
    )
