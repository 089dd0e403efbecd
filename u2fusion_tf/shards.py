"""Splitting work over processes or machines: ``--shard K --num_shards N`` takes the K-th of N
consecutive blocks of a sorted list (data preparation's pairs, folder fusion's file stems), so
the N parts together are the whole list, each item once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from u2fusion_tf.errors import U2FusionError

Item = TypeVar("Item")


def check_shard(shard: int, num_shards: int) -> None:
    """Refuses a part that does not exist, naming the flag at fault."""
    if num_shards < 1:
        raise U2FusionError(f"--num_shards {num_shards}: must be at least 1")
    if not 0 <= shard < num_shards:
        raise U2FusionError(f"--shard {shard}: must be in 0 .. {num_shards - 1} (--num_shards)")


def take_shard(items: Sequence[Item], shard: int, num_shards: int) -> list[Item]:
    """Block `shard` of `num_shards` consecutive blocks of `items` (sizes differ by at most 1)."""
    check_shard(shard, num_shards)
    return list(items[len(items) * shard // num_shards : len(items) * (shard + 1) // num_shards])
