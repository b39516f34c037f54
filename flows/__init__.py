"""Orchestration: which tasks run in which order over which shards, and the CLI."""

import tasks  # noqa: F401  (sets Prefect's telemetry off before prefect is imported)
