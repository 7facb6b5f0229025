"""Prefect flows: one per stage and one per paper table. Flows only sequence tasks."""

import os

# A temporary Prefect server would try to send telemetry at start-up; our machines are offline and
# the failed attempt races the server's first database migration. Users can still opt in.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
