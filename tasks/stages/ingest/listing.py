"""Listing inputs: expand the configured files, folders and glob patterns into the
sorted, de-duplicated list of input files (`list_inputs`), refusing symlinks that lead
out of a searched folder and special files (FIFOs, sockets, devices) with a rejection
each, walking every real folder once so a symlink cycle ends; and dropping files whose
name matches an exclude pattern (`without_excluded`)."""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from tasks.config import extension_of, normalise_extension
from tasks.records import Rejection, RejectReason
from tasks.stages.ingest.common import _reject

_GLOB_CHARS = re.compile(r"[*?\[]")


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _glob_root(pattern: str) -> Path:
    """The folder a glob searches: its leading components without wildcards."""
    parts: list[str] = []
    for part in Path(pattern).expanduser().parts:
        if _GLOB_CHARS.search(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISDIR, "folder"),
)


def _not_a_file(path: Path, mode: int | None = None) -> str:
    """Why `path`, which is no regular file (nor, when listing, a folder), cannot be read:
    said truly (a FIFO is not 'missing'), and without opening it (opening a FIFO blocks).
    `mode`: the st_mode of a stat the caller took already."""
    if mode is None:
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            return "broken symlink" if path.is_symlink() else "no such file or folder"
        except OSError as exc:
            return str(exc)
    kind = next((name for test, name in _SPECIAL_KINDS if test(mode)), "special file")
    return f"not a regular file ({kind})"


class _Listing:
    """Accumulates found files (keyed by resolved path, so aliases count once) and
    rejections (keyed by origin, so overlapping entries don't report twice).
    `follow` (input.follow_symlinks) lets symlinks lead out of the searched folder."""

    def __init__(self, wanted: frozenset[str], follow: bool = False) -> None:
        self.wanted = wanted
        self.follow = follow
        self.files: set[Path] = set()
        self.rejections: dict[str, Rejection] = {}

    def reject(self, origin: str, reason: RejectReason, detail: str) -> None:
        self.rejections.setdefault(origin, _reject(origin, reason, detail))

    def escapes(self, path: Path, root: Path, real: Path | None = None) -> bool:
        """A symlink out of the searched folder could pull in anything on the machine
        (another user's files, /etc): unless told to follow symlinks, refuse it, and say
        so rather than hide it. Resolving catches a link anywhere along the path
        (`real`, when the caller has resolved `path` already)."""
        if not self.follow and not _inside(real or path.resolve(), root):
            self.reject(str(path), RejectReason.UNREADABLE, "symlink points outside the input folder")
            return True
        return False

    def add_found(self, path: Path, root: Path) -> None:
        """A file met while searching `root` (a folder or a glob's folder)."""
        if extension_of(path) not in self.wanted:
            return  # other file types in a searched folder are simply not inputs
        real = path.resolve()  # once, for both the escape check and the key
        if self.escapes(path, root, real):
            return
        if path.is_file():
            self.files.add(real)
        else:
            self.reject(str(path), RejectReason.UNREADABLE, _not_a_file(path))

    def _enter(self, sub: Path, root: Path, seen: set[Path]) -> bool:
        """Whether the walk goes into folder `sub`."""
        if sub.name.startswith("."):
            return False  # hidden folders (.git, .cache) are never inputs
        if sub.is_symlink() and not self.follow:
            # Outside: refused. Inside: its files are listed through their real path.
            self.escapes(sub, root)
            return False
        if self.follow:  # without following symlinks os.walk cannot reach a folder twice
            real = sub.resolve()
            if real in seen:
                return False  # a symlink cycle, or a folder already reached another way
            seen.add(real)
        return True

    def folders(self, top: Path, root: Path) -> Iterator[tuple[Path, list[str]]]:
        """(folder, its non-hidden entry names that are no folders) for `top` and each
        folder below it, each real folder once, so a symlink cycle ends."""

        def on_error(exc: OSError) -> None:
            self.reject(str(exc.filename or top), RejectReason.UNREADABLE, str(exc))

        seen = {top.resolve()} if self.follow else set()
        for dirpath, dirnames, filenames in os.walk(top, onerror=on_error, followlinks=self.follow):
            here = Path(dirpath)
            dirnames[:] = [name for name in sorted(dirnames) if self._enter(here / name, root, seen)]
            yield here, [name for name in sorted(filenames) if not name.startswith(".")]

    def walk(self, folder: Path) -> None:
        root = folder.resolve()
        for here, names in self.folders(folder, root):
            for name in names:
                self.add_found(here / name, root)

    def glob(self, pattern: str, root: Path) -> Iterator[str]:
        """glob.glob(pattern, recursive=True), except that `**` descends the way `walk`
        does: never round a symlink cycle (glob would, exponentially), and through a
        symlink only when following them."""
        parts = pattern.split(os.sep)
        if "**" not in parts:
            yield from glob.iglob(pattern)  # fixed depth: no cycle to go round
            return
        i = parts.index("**")
        prefix, rest = os.sep.join(parts[:i]) or (os.sep if i else "."), os.sep.join(parts[i + 1 :])
        for base in map(Path, glob.iglob(prefix) if _GLOB_CHARS.search(prefix) else [prefix]):
            if not base.is_dir() or self.escapes(base, root):
                continue
            if not rest:  # "dir/**": the base alone; the caller walks it, every level below
                yield str(base)
                continue
            for folder, _ in self.folders(base, root):
                yield from self.glob(str(Path(glob.escape(str(folder))) / rest), root)


def list_inputs(paths: list[str], extensions: Sequence[str], follow_symlinks: bool = False) -> tuple[list[Path], list[Rejection]]:
    """Expand files, folders (recursively) and glob patterns into the sorted, de-duplicated
    list of input files (resolved paths), plus a Rejection for each entry that names
    nothing usable. `follow_symlinks` (input.follow_symlinks) reads what symlinks in a
    searched folder point to outside it; they are refused otherwise."""
    listing = _Listing(frozenset(normalise_extension(e) for e in extensions), follow_symlinks)
    for entry in paths:
        # A name like "Reuters [2024].txt" is a file, not a pattern, when it exists.
        if _GLOB_CHARS.search(entry) and not os.path.lexists(os.path.expanduser(entry)):
            _expand_glob(entry, listing)
            continue
        path = Path(entry).expanduser()
        if path.is_dir():
            listing.walk(path)
        elif path.is_file():
            # Named explicitly: followed even if it is a symlink, but its type must be readable.
            if extension_of(path) in listing.wanted:
                listing.files.add(path.resolve())
            else:
                listing.reject(entry, RejectReason.UNSUPPORTED, f"extension '{path.suffix or '(none)'}' is not one of {sorted(listing.wanted)}")
        else:
            listing.reject(entry, RejectReason.UNREADABLE, _not_a_file(path))
    return sorted(listing.files), sorted(listing.rejections.values(), key=lambda r: r.origin)


def _expand_glob(pattern: str, listing: _Listing) -> None:
    # glob skips hidden names unless the pattern spells them out; so does listing.glob's `**`.
    root = _glob_root(pattern).resolve()
    matches = sorted(set(listing.glob(os.path.expanduser(pattern), root)))
    if not matches:
        listing.reject(pattern, RejectReason.UNREADABLE, "glob matched nothing")
        return
    walked: set[Path] = set()
    for match in matches:
        path = Path(match)
        if path.is_dir():
            # "dir/**/*" matches folders inside folders it matched: walking one inside a
            # folder already walked would only repeat work (a look-up per parent, not a scan).
            if listing.escapes(path, root):
                continue
            if path not in walked and walked.isdisjoint(path.parents):
                walked.add(path)
                listing.walk(path)
        else:
            listing.add_found(path, root)


def without_excluded(files: list[Path], patterns: Sequence[str]) -> list[Path]:
    """Drop files whose name matches a pattern (a folder's README is not an article)."""
    return [f for f in files if not any(fnmatch.fnmatch(f.name, p) for p in patterns)]
