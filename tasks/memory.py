"""Keeping a long run's memory flat. Length-sorted batches give every forward pass a new
shape, and glibc keeps the freed buffers of a finished shard mapped; handing them back
after each shard keeps the process near its working set instead of its high-water mark.

Measured with benchmarks/harness.py over 1,000 documents (5 shards): with glibc's defaults
the CLI grew from 1.0 to 1.6 GB as shards went by (the freed memory was anonymous heap,
not Python objects: tracemalloc saw 52 MB). Trimming above 128 KB with the default 128 KB
mmap threshold (Dask's nanny setting) kept it at 0.9-1.1 GB but cost torch about 30% of
its speed (every activation mmapped and faulted in afresh); with the mmap threshold at
4 MB the growth was 1.0 to 1.2 GB for about 2% of wall time, the policy kept here."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from functools import lru_cache


@lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        library = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return library if library is not None and hasattr(library, "malloc_trim") else None


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers, from glibc's malloc.h
TRIM_THRESHOLD_BYTES = 128 * 1024
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024


def keep_heap_trimmed() -> None:
    """Give free heap memory above 128 KB back at once (glibc's default lets the threshold
    grow to 32 MB, and a long run's heap with it), and map buffers over 4 MB on their own so
    they are unmapped when freed; smaller ones (most of torch's activations) stay in the
    heap, where reusing them is cheap. An environment that sets either glibc variable
    (MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_) is left as it is."""
    libc = _libc()
    if libc is None or {"MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"} & set(os.environ):
        return
    libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)


def release_freed_memory() -> None:
    """Return freed heap pages to the OS (glibc's malloc_trim; nothing elsewhere)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


@lru_cache(maxsize=1)
def configure_process_memory() -> None:
    """The pipeline's memory policy for this process, set once by whatever loads the
    encoder (the CLI's process, each Dask worker), before the first forward pass; a process
    that only imports newsflow (a notebook, the benchmarks' peer rows) keeps its defaults."""
    # oneDNN caches a compiled primitive per input shape (1,024 by default): hundreds of MB
    # for shapes that never repeat. Read when torch creates its first primitive.
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")
    keep_heap_trimmed()
