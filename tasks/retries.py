"""Which failures are worth another try: a stage that hits a passing I/O fault (a busy or
stale file handle, a network filesystem hiccup, a timeout) retries; one that fails for a
reason that will not go away (a missing file or model, a permission, a bad value, a bug)
fails at once, so the run says what broke without waiting."""

from __future__ import annotations

from typing import Any

PERMANENT_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)
STAGE_RETRIES = 2


def is_transient(error: BaseException) -> bool:
    return isinstance(error, (OSError, TimeoutError)) and not isinstance(error, PERMANENT_OS_ERRORS)


def retry_on_io_error(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's retry_condition_fn: retry only transient I/O errors."""
    error = state.data if isinstance(state.data, BaseException) else state.result(raise_on_failure=False)
    return isinstance(error, BaseException) and is_transient(error)


def stage_task_options() -> dict[str, Any]:
    """The retry options every shard stage's task shares."""
    return {"retries": STAGE_RETRIES, "retry_delay_seconds": 1, "retry_condition_fn": retry_on_io_error}
