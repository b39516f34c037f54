"""The ingest stage: `ingest_files` reads a group of input files into staging shards of
bounded size, rejections riding along, numbered group * GROUP_STRIDE + shard so that
groups read in parallel never collide."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from tasks.config import InputConfig
from tasks.dataset.staging import write_records_shard
from tasks.records import RAW_SCHEMA, Rejection, ShardRef
from tasks.stages.ingest.common import STAGE, Item
from tasks.stages.ingest.readers import read_records

GROUP_STRIDE = 100_000  # staging index = group * stride + shard within the group


def write_item_shards(items: Iterable[Item], shard_size: int, staging_dir: str, group: int) -> list[ShardRef]:
    """Documents and rejections into staging shards of at most `shard_size` documents, the
    rejections riding along, numbered group * GROUP_STRIDE + shard. Every file group and
    every fetch batch goes through here."""
    refs: list[ShardRef] = []
    documents: list[dict] = []
    rejections: list[Rejection] = []
    started = time.perf_counter()

    def flush() -> None:
        nonlocal started
        if len(refs) >= GROUP_STRIDE:  # the next index would be another group's
            raise ValueError(f"file group {group} would need over {GROUP_STRIDE} shards: raise run.shard_size")
        index = group * GROUP_STRIDE + len(refs)
        refs.append(write_records_shard(Path(staging_dir), STAGE, index, documents, RAW_SCHEMA, rejections, started))
        documents.clear()
        rejections.clear()
        started = time.perf_counter()

    for item in items:
        if isinstance(item, Rejection):
            rejections.append(item)
        else:
            documents.append(item.to_row())
            if len(documents) >= shard_size:
                flush()
    if documents or rejections or not refs:
        flush()
    return refs


def ingest_files(files: list[str], config: InputConfig, shard_size: int, staging_dir: str, group: int) -> list[ShardRef]:
    """Read a group of files into staging shards of at most `shard_size` records, so one
    huge CSV still becomes bounded shards. Rejections ride along with the shards."""
    records = (item for file in files for item in read_records(Path(file), config))
    return write_item_shards(records, shard_size, staging_dir, group)
