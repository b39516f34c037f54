"""The shard cache: what a stage computed for a shard, kept under `<output root>/_cache/`
by a key made of the shard's content, the stage's settings, the models and the code.

A run that is killed or fails leaves its finished shards there, so running it again
recomputes only the rest. Entries are folders of hard links to the staging files, written
aside and renamed into place whole, with their reference (`ref.json`) inside: a reader
finds a complete entry or none. A completed run removes the entries it used; a run that
takes an entry links the files into its own staging first, so removing the entry never
pulls files from under another run."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tasks.records import ShardRef
from tasks.versions import STAGE_LIBRARIES, library_versions

CACHE_DIR = "_cache"
REF_FILE = "ref.json"


def link_or_copy(source: Path, target: Path) -> None:
    """A hard link (free, and it survives the source's removal); where the filesystem has
    none, a copy written aside and renamed, so a half copy never passes for a file."""
    try:
        os.link(source, target)
    except (FileExistsError, FileNotFoundError):
        if not target.exists():
            raise
    except OSError:
        pending = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        shutil.copy2(source, pending)
        os.replace(pending, target)


def settings_json(settings: Any) -> str:
    """Stage settings (pydantic sections, dicts, tuples of them) as canonical JSON."""

    def plain(value: Any) -> Any:
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json")
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        return value

    return json.dumps(plain(settings), sort_keys=True, separators=(",", ":"), default=str)


def shard_identity(ref: ShardRef) -> str:
    """What identifies a shard's content: the cache key that produced it (which fixes every
    part of it), else the sha256 of its main staging file."""
    return ref.cache_key or ref.content_hash


@dataclass(frozen=True)
class ShardCache:
    """Where a run's stages look up and keep finished shards. Small and picklable, so it
    travels to Dask workers; `code` is a digest of the analysis code and the versions of the
    libraries stages compute with (a cached shard is only reused by the same ones), `models`
    a digest of the run's model provenance."""

    root: str
    code: str
    models: str

    @classmethod
    def for_output(cls, output_root: str, models: dict[str, Any], analysis_code: str) -> ShardCache:
        """The cache under an output root, for this analysis code (its digest), the installed
        libraries and these models (their provenance)."""

        def digest(value: Any) -> str:
            return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()

        return cls(str(Path(output_root) / CACHE_DIR), digest([analysis_code, library_versions(STAGE_LIBRARIES)]), digest(models))

    def key(self, stage: str, upstream: ShardRef, settings: Any, uses_models: bool = True) -> str:
        material = json.dumps(
            {
                "stage": stage,
                "shard": shard_identity(upstream),
                "settings": settings_json(settings),
                "code": self.code,
                "models": self.models if uses_models else "",
            },
            sort_keys=True,
        )
        return hashlib.sha256(material.encode()).hexdigest()

    def entry(self, stage: str, key: str) -> Path:
        return Path(self.root) / stage / key

    def fetch(self, stage: str, key: str, index: int, staging_dir: str) -> ShardRef | None:
        """The cached result, hard-linked into this run's staging; None when absent (or
        when it vanished while being taken)."""
        entry = self.entry(stage, key)
        try:
            saved = json.loads((entry / REF_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        own = Path(staging_dir) / stage / "cached" / key
        own.mkdir(parents=True, exist_ok=True)

        def take(name: str | None) -> str | None:
            if name is None:
                return None
            target = own / name
            if not target.exists():
                link_or_copy(entry / name, target)
            return str(target)

        try:
            ref = ShardRef(**saved)
            taken = replace(
                ref,
                index=index,
                path=take(ref.path),
                parts={k: take(v) for k, v in ref.parts.items()},
                rejected_path=take(ref.rejected_path),
                cached=True,
                seconds=0.0,
                cache_key=key,
            )
            os.utime(entry)  # in use: not stale (a broken entry is not touched, so it ages out)
            return taken
        except (OSError, TypeError):
            return None

    def publish(self, stage: str, key: str, ref: ShardRef) -> ShardRef:
        """Keep a freshly computed result; returns it with its key. Best effort: losing a
        race to another shard or run that kept the same key is fine (both computed the
        same thing), and a cache that cannot be written costs resumability, not the run."""
        ref = replace(ref, cache_key=key)
        entry = self.entry(stage, key)
        if entry.exists():
            return ref
        pending = entry.with_name(f".{key}.{uuid.uuid4().hex}.tmp")  # one per call: shards with equal content race here
        try:
            self._write_entry(pending, entry, ref)
        except OSError:
            shutil.rmtree(pending, ignore_errors=True)
        return ref

    def _write_entry(self, pending: Path, entry: Path, ref: ShardRef) -> None:
        pending.mkdir(parents=True)

        def keep(path: str | None) -> str | None:
            if path is None:
                return None
            link_or_copy(Path(path), pending / Path(path).name)
            return Path(path).name

        saved = replace(ref, path=keep(ref.path), parts={k: keep(v) for k, v in ref.parts.items()}, rejected_path=keep(ref.rejected_path))
        (pending / REF_FILE).write_text(json.dumps(asdict(saved)), encoding="utf-8")
        os.rename(pending, entry)  # fails when another shard or run kept the key first

    def remove(self, refs: list[ShardRef], stage: str) -> None:
        for ref in refs:
            if ref.cache_key:
                shutil.rmtree(self.entry(stage, ref.cache_key), ignore_errors=True)


def through_cache(
    cache: ShardCache | None,
    stage: str,
    upstream: ShardRef,
    settings: Any,
    staging_dir: str,
    compute: Callable[[], ShardRef],
    index: int | None = None,
    uses_models: bool = True,
) -> ShardRef:
    """`compute()`'s result for this shard (numbered `index`, by default the upstream's),
    taken from the cache when an earlier run finished it; without a cache, `compute()`."""
    if cache is None:
        return compute()
    key = cache.key(stage, upstream, settings, uses_models)
    hit = cache.fetch(stage, key, upstream.index if index is None else index, staging_dir)
    return hit or cache.publish(stage, key, compute())


STALE_AFTER_DAYS = 7  # entries no run came back for in a week are left by runs nobody resumed


def prune_stale_entries(cache_root: str | Path, older_than_days: float = STALE_AFTER_DAYS) -> int:
    """Remove cache entries (and abandoned half-written ones) older than the limit; returns how many."""
    root = Path(cache_root)
    cutoff = time.time() - older_than_days * 86_400
    stale = [entry for stage in (root.iterdir() if root.is_dir() else []) if stage.is_dir() for entry in stage.iterdir() if modified_before(entry, cutoff)]
    for entry in stale:
        shutil.rmtree(entry, ignore_errors=True)
    return len(stale)


def modified_before(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime < cutoff
    except FileNotFoundError:  # another run removed it meanwhile
        return False


def finished_entries(cache_root: str | Path, stage: str) -> list[Path]:
    """The complete entries a stage has in the cache (what a resumed run would take)."""
    folder = Path(cache_root) / stage
    return [e for e in folder.iterdir() if not e.name.startswith(".") and (e / REF_FILE).exists()] if folder.is_dir() else []
