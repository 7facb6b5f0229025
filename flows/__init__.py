"""Prefect flows: one per stage and one per paper table. Flows only sequence tasks."""

import os

# A temporary Prefect server would try to send telemetry at start-up; our machines are offline and
# the failed attempt races the server's first database migration. Users can still opt in.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The first start of a temporary server on a fresh machine migrates a new database and takes longer than
# Prefect's 20 s default on 2 cores (measured: it timed out); later starts take ~10 s.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
