"""What a run's fetching shares across its tasks: one polite client per run and process
(so per-host spacing and the global limit hold across every thread of the run), and the
article pages its listing step already fetched (kept in the run's staging, so the page
is not requested twice)."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from tasks.config import FetchConfig
from tasks.web.http import PoliteClient
from tasks.web.responses import Response

_clients: dict[str, PoliteClient] = {}
_lock = threading.Lock()


def client_for(run_id: str, settings: FetchConfig) -> PoliteClient:
    """The run's client in this process, made on first use."""
    with _lock:
        if run_id not in _clients:
            _clients[run_id] = PoliteClient(settings)
        return _clients[run_id]


def close_client(run_id: str) -> None:
    with _lock:
        client = _clients.pop(run_id, None)
    if client is not None:
        client.close()


def _prefetched_path(staging: str, url: str) -> Path:
    return Path(staging) / "prefetched" / hashlib.sha256(url.encode()).hexdigest()[:32]


def keep_prefetched(staging: str, responses: dict[str, Response]) -> None:
    """Keep pages fetched while listing for the fetch step: the body as it is, the rest as JSON."""
    for url, response in responses.items():
        path = _prefetched_path(staging, url)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".body").write_bytes(response.body)
        meta = {**asdict(response), "body": None, "fetched_at": response.fetched_at.isoformat()}
        path.with_suffix(".json").write_text(json.dumps(meta), encoding="utf-8")


def take_prefetched(staging: str, url: str) -> Response | None:
    """The page the listing step fetched for `url` (once), or None."""
    path = _prefetched_path(staging, url)
    if not path.with_suffix(".json").exists():
        return None
    meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    body = path.with_suffix(".body").read_bytes()
    for suffix in (".json", ".body"):
        path.with_suffix(suffix).unlink()
    tuples = {name: tuple(tuple(pair) if isinstance(pair, list) else pair for pair in meta[name]) for name in ("headers", "request_headers", "redirects")}
    return Response(**{**meta, **tuples, "body": body, "fetched_at": datetime.fromisoformat(meta["fetched_at"])})
