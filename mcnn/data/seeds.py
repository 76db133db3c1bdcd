"""Per-example generator seeds: a function of (seed, stream, epoch, index) alone.

Training and validation can never share a generator state: every seed of the ``"val"`` stream is
odd and every seed of any other stream is even, whatever ``seed``, ``epoch`` and ``index`` are. So
a validation example is never a training example drawn again (for procedural content, where the
generator state is the whole content, this is the hold-out guarantee).
"""

from __future__ import annotations

import hashlib

VAL_STREAM = "val"


def example_seed(seed: int, stream: str, epoch: int, index: int) -> int:
    """A 63-bit generator seed, stable across runs and platforms; odd iff ``stream == "val"``."""
    key = f"{seed}:{stream}:{epoch}:{index}".encode()
    h = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1
    return (h & ~1) | (stream == VAL_STREAM)
