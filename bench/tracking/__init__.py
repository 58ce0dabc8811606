"""MLflow records: the ONLY package that imports mlflow (DESIGN.md "MLflow").

Experiment = suite. One run per train job (params: resolved config; tags: suite, job key,
code fingerprint, code and package versions, device, data hash; artifacts: checkpoint,
resolved config, training curve) and one nested run per threat evaluation (metrics: accuracy,
CI half-width, episodes, device seconds; artifact: per-episode accuracies). `store` opens
stores (atomic SQLite creation), `tracker` reads and writes runs, `records` turns runs into
plain records in bulk.
"""

import os

# MLflow's per-download progress bars and table-creation notices would drown the job lines.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from bench.tracking.records import CHECKPOINT, PER_EPISODE, TAG, FinishedRun, RunRecord  # noqa: E402
from bench.tracking.store import DEFAULT_URI, absolute_uri, resolve_uri, store_exists  # noqa: E402
from bench.tracking.tracker import Tracker  # noqa: E402

__all__ = ["CHECKPOINT", "DEFAULT_URI", "PER_EPISODE", "TAG", "FinishedRun", "RunRecord", "Tracker",
           "absolute_uri", "resolve_uri", "store_exists"]
