"""On-demand retraining: the durable job queue and the worker process."""

from __future__ import annotations

from rascore.jobs.context import Cancelled, JobContext
from rascore.jobs.worker import Worker

__all__ = ["Cancelled", "JobContext", "Worker"]
