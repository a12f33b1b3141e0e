"""Registry of every degradation op, by name."""

from __future__ import annotations

from degrade.ops import blur, creases, holes, jpeg, noise, resample, scratches, spots, texture, tone
from degrade.ops.base import Op

OPS: dict[str, Op] = {
    op.name: op
    for module in (blur, noise, resample, jpeg, tone, scratches, creases, holes, spots, texture)
    for op in module.OPS
}


def get_op(name: str) -> Op:
    """The op called `name`, or a KeyError listing the known ones."""
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r} (known: {', '.join(sorted(OPS))})") from None
