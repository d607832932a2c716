"""Work split into N shards, one per job of an array or rank of a launch: `predict --shard` and `grid --shard`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

from csunet.errors import SettingsError

SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*", re.ASCII)
Item = TypeVar("Item")


def parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int]:
    """(K, N) from ``"K/N"`` in ASCII digits with 1 <= K <= N; None or ``""``: the whole, (1, 1)."""
    if shard is None or shard == "":
        return 1, 1
    if isinstance(shard, str):
        match = SHARD.fullmatch(shard)
        if not match:
            raise SettingsError(
                f"--shard {shard!r}: give K/N in digits 0-9, e.g. 2/8 for the second of eight parts"
            )
        shard = (int(match.group(1)), int(match.group(2)))
    index, count = shard
    if not 1 <= index <= count:
        raise SettingsError(f"--shard {index}/{count}: K must be between 1 and N")
    return index, count


def shard_of(items: Sequence[Item], index: int, count: int) -> list[Item]:
    """Items K, K+N, K+2N, ... (1-based): N shards are disjoint and together hold every item."""
    return list(items[index - 1 :: count])
