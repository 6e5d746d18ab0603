"""The service's periodic jobs: a list of jobs, each run every so many seconds.

Started with the app (its lifespan) and stopped with it. Each job runs in a
worker thread under a lease (:func:`assay.store.lease.exclusive`) named after
the job: with several workers or replicas of ``assay serve`` on one store,
one of them runs a job at a time and the others skip that turn. A job's
failure is logged and does not stop the schedule. A job acts as the service
itself (:data:`assay.registry.roles.SCHEDULER_ACTOR` in the audit trail), never
as a user.

    jobs = service_jobs(settings)      # what the settings turn on
    scheduler = Scheduler(store, jobs)
    scheduler.start()                  # inside a running event loop
    await scheduler.stop()
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from assay.store.lease import exclusive

log = logging.getLogger("assay.scheduler")


@dataclass(frozen=True)
class PeriodicJob:
    """``run(store)`` every ``interval`` seconds (0 or less: never). ``name`` names the
    lease too, so it must be the same in every worker."""

    name: str
    interval: float
    run: Callable[[Any], Any]


@dataclass
class JobRecord:
    """What the last turn of a job in this process did."""

    outcome: str = ""  # "ran", "skipped" (another process held the lease) or "failed"
    started: float | None = None
    finished: float | None = None
    error: str = ""
    result: Any = None
    turns: int = 0


def _monitor_run(store: Any) -> Any:
    from assay.monitor.schedule import run_due

    return run_due(store)


def _notify_dispatch(store: Any) -> Any:
    from assay.notify import dispatch_due

    return dispatch_due(store)


def _escalate(store: Any) -> Any:
    from assay.operate import escalate_overdue

    return escalate_overdue(store)


def service_jobs(settings: Any) -> list[PeriodicJob]:
    """The jobs of ``assay serve``, with the intervals the settings give."""
    jobs = [
        PeriodicJob("monitor.run", float(settings.monitor_interval), _monitor_run),
        # the outbox of alerts and approvals: first attempts the API's commits left
        # behind, and retries whose back-off has passed
        PeriodicJob("notify.dispatch", float(getattr(settings, "notify_interval", 0.0)),
                    _notify_dispatch),
        # overdue incident steps notify the next role of the escalation chain, once each
        PeriodicJob("incident.escalate", float(getattr(settings, "escalation_interval", 0.0)),
                    _escalate),
    ]
    return [j for j in jobs if j.interval > 0]


def run_job(store: Any, job: PeriodicJob, record: JobRecord | None = None) -> JobRecord:
    """One turn of ``job``: run it if no other process holds its lease, else skip."""
    record = record or JobRecord()
    record.turns += 1
    record.started, record.error, record.result = time.time(), "", None
    try:
        with exclusive(store, f"job:{job.name}") as held:
            if not held:
                record.outcome = "skipped"
                return record
            record.result = job.run(store)
            record.outcome = "ran"
    except Exception as exc:  # a failed turn is logged; the next one runs all the same
        record.outcome, record.error = "failed", f"{type(exc).__name__}: {exc}"
        log.exception("periodic job %s failed", job.name)
    finally:
        record.finished = time.time()
    return record


@dataclass
class Scheduler:
    """Runs each job every ``job.interval`` seconds, first one interval after start."""

    store: Any
    jobs: list[PeriodicJob]
    records: dict[str, JobRecord] = field(default_factory=dict)
    _tasks: list[asyncio.Task] = field(default_factory=list)

    def start(self) -> None:
        for job in self.jobs:
            self.records[job.name] = JobRecord()
            self._tasks.append(asyncio.get_running_loop().create_task(
                self._loop(job), name=f"assay-job-{job.name}"))

    async def _loop(self, job: PeriodicJob) -> None:
        record = self.records[job.name]
        while True:
            await asyncio.sleep(job.interval)
            await asyncio.to_thread(run_job, self.store, job, record)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


__all__ = ["JobRecord", "PeriodicJob", "Scheduler", "run_job", "service_jobs"]
