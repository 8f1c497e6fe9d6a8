"""What a running job sees: progress reporting, a cancel check between steps, a log tail."""

from __future__ import annotations

import collections
import time
from typing import Any

from rascore.store import Store
from rascore.store import jobs as job_sql


class Cancelled(Exception):
    """Raised by a job's code between steps after a cancel was requested."""


class JobContext:
    """Handed to a runner: ``on_progress`` and ``should_stop`` are the training loop's callbacks."""

    def __init__(
        self,
        store: Store,
        job_id: int,
        *,
        progress_every_s: float = 1.0,
        cancel_every_s: float = 0.5,
        log_lines: int = 40,
    ) -> None:
        self.store = store
        self.job_id = job_id
        self.progress_every_s = progress_every_s
        self.cancel_every_s = cancel_every_s
        self._log: collections.deque[str] = collections.deque(maxlen=log_lines)
        self._last_progress = 0.0
        self._last_cancel_check = 0.0
        self._cancelled = False
        self.progress: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []

    @property
    def log_tail(self) -> str:
        """The last lines logged by the job."""
        return "\n".join(self._log)

    def log(self, line: str) -> None:
        """Append a line to the job's log tail (written with the next progress update)."""
        self._log.append(f"{time.strftime('%H:%M:%S')} {line}")

    def adopt(self, job: dict[str, Any]) -> None:
        """Take over the row's log tail, progress and epoch history (another process wrote them).

        The worker and the rank-0 process of a torchrun job write the same row in turn; each
        picks up where the other left off so that neither drops the other's lines.
        """
        self._log.clear()
        self._log.extend(line for line in (job.get("log_tail") or "").splitlines() if line)
        progress = dict(job.get("progress") or {})
        self.history = list(progress.pop("history", None) or [])
        self.progress = {**progress, "history": self.history} if self.history else progress

    def on_progress(self, progress: dict[str, Any], force: bool = False) -> None:
        """Record progress in the job row, at most once per ``progress_every_s`` unless forced.

        Each validated epoch is kept in ``history`` and always written, so a page drawing the
        loss and validation-AUC curves sees every epoch however short epochs are.
        """
        if progress.get("phase") == "validated" and progress.get("epoch"):
            epoch = progress["epoch"]
            self.history = [h for h in self.history if h["epoch"] != epoch] + [
                {k: progress.get(k) for k in ("epoch", "loss", "val_auc", "val_macro_auc")}
            ]
            force = True
        self.progress = {**progress, "history": self.history} if self.history else dict(progress)
        now = time.monotonic()
        if force or now - self._last_progress >= self.progress_every_s:
            self._last_progress = now
            job_sql.heartbeat(self.store, self.job_id, self.progress, self.log_tail)

    def should_stop(self) -> bool:
        """True once a cancel was requested (the row is read at most every ``cancel_every_s``)."""
        now = time.monotonic()
        if not self._cancelled and now - self._last_cancel_check >= self.cancel_every_s:
            self._last_cancel_check = now
            self._cancelled = job_sql.cancel_requested(self.store, self.job_id)
        return self._cancelled
