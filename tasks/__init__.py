"""newsflow's stages as plain typed functions, each with its Prefect task beside it."""

import os

# Before anything imports prefect: no telemetry (there is no outside network here, and the
# server's attempt at every start can end in a "database is locked" traceback).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
