"""Gunicorn settings of the API: ``gunicorn -c gunicorn.conf.py 'api:create_app()'``.

Every setting comes from the environment. The SOH_* variables are checked
here, in the master, so a bad value stops the server at once with a message
naming it. Workers share their Prometheus metrics through the files of
``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary directory unless set).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

# Before anything imports prometheus_client: it picks its mode from this.
_made_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(
    prefix="soh-metrics-"
)
if not Path(_metrics_dir).is_dir():
    sys.exit(f"PROMETHEUS_MULTIPROC_DIR: {_metrics_dir!r} is not a directory.")
for _stale in Path(_metrics_dir).glob("*.db"):
    _stale.unlink()
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir

from api.config import ApiSettings, ObservabilitySettings  # noqa: E402
from soh_es.errors import SohError  # noqa: E402
from soh_es.logs import LogSettings, log_config  # noqa: E402
from soh_es.settings import Settings  # noqa: E402

try:
    Settings.from_env()
    ApiSettings.from_env()
    ObservabilitySettings.from_env()
    _log_settings = LogSettings.from_env()
except SohError as error:
    sys.exit(f"soh: {error}")

_workers = os.environ.get("WEB_CONCURRENCY") or "2"
if not _workers.isdigit() or not 1 <= int(_workers) <= 64:
    sys.exit(f"WEB_CONCURRENCY: {_workers!r} is not a number of workers 1 to 64.")

bind = "0.0.0.0:8000"
workers = int(_workers)
timeout = 60
graceful_timeout = 20
# The API writes one line per request itself, with its correlation id.
accesslog = None
errorlog = "-"
logconfig_dict = log_config(_log_settings)


def child_exit(server: Any, worker: Any) -> None:
    """Drops a finished worker's live gauges from the shared metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    """Removes the metrics directory, if this file made it."""
    if _made_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
