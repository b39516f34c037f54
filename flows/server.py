"""A local Prefect server for newsflow: started on loopback with the settings that keep the
UI talking to the right API, telemetry off, remembered in a small state file so that
`newsflow run` finds it and `newsflow server stop` ends it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

HOST = "127.0.0.1"
DEFAULT_PORT = 4200
HEALTH_TIMEOUT_S = 90.0


@dataclass
class ServerState:
    pid: int
    port: int
    log: str

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://{HOST}:{self.port}"


def state_dir() -> Path:
    """Where the server's state and log live: $NEWSFLOW_HOME, else ~/.newsflow."""
    folder = Path(os.environ.get("NEWSFLOW_HOME") or Path.home() / ".newsflow")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def state_file() -> Path:
    return state_dir() / "server.json"


def read_state() -> ServerState | None:
    try:
        return ServerState(**json.loads(state_file().read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as response:  # noqa: S310  (loopback only)
            return response.status == 200
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def server_environment(port: int) -> dict[str, str]:
    """Without the API host/port settings the bundled UI calls port 4200 whatever the server's port."""
    return {
        **os.environ,
        "PREFECT_SERVER_API_HOST": HOST,
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_UI_API_URL": f"http://{HOST}:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }


def start_server(port: int = DEFAULT_PORT) -> ServerState:
    """Start `prefect server start` in the background and wait until /api/health answers."""
    current = read_state()
    if current and healthy(current.api_url):
        return current
    log = state_dir() / "server.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", HOST, "--port", str(port)],
            env=server_environment(port),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    state = ServerState(process.pid, port, str(log))
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Prefect server exited with code {process.returncode}; see {log}")
        if healthy(state.api_url):
            state_file().write_text(json.dumps(asdict(state)), encoding="utf-8")
            return state
        time.sleep(0.5)
    stop_process(process.pid)
    raise RuntimeError(f"the Prefect server did not answer {state.api_url}/health within {HEALTH_TIMEOUT_S:.0f} s; see {log}")


def stop_process(pid: int, grace_s: float = 10.0) -> None:
    """Stop the server's whole process group: SIGTERM, then SIGKILL after a grace period."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop_server() -> ServerState | None:
    state = read_state()
    if state:
        stop_process(state.pid)
        state_file().unlink(missing_ok=True)
    return state


def start_ephemeral_api_in_background() -> threading.Thread:
    """Boot Prefect's temporary server now, in a thread, instead of on the flow's first API
    call: its subprocess (about 10 s here) then starts while this process imports torch and
    loads the models. Join the thread before running a flow; the flow reuses the server."""

    def boot() -> None:
        from prefect.server.api.server import SubprocessASGIServer

        SubprocessASGIServer().start()

    thread = threading.Thread(target=boot, name="prefect-ephemeral-server", daemon=True)
    thread.start()
    return thread


def use_running_server(read_profile: bool = True) -> str | None:
    """Point this process at newsflow's server when one is running and PREFECT_API_URL is not
    already set; returns the API URL in use, or None for Prefect's ephemeral API.
    `read_profile=False` skips the user's Prefect profile, whose reading imports prefect
    (about 2 s): for commands that only read files unless a server is set."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    state = read_state()
    if state and healthy(state.api_url):
        os.environ["PREFECT_API_URL"] = state.api_url
        return state.api_url
    if not read_profile:
        return None
    # Last, a server the user's Prefect profile names (read only now: nothing is set after it).
    from prefect.settings import get_current_settings

    return get_current_settings().api.url or None
