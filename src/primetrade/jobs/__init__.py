"""Background work: the transactional outbox, the job registry, the relay, the worker and
the scheduler. Services call `enqueue` inside their transaction; handlers are `@job`s."""

from primetrade.jobs.outbox import enqueue
from primetrade.jobs.registry import JobContext, job

__all__ = ["JobContext", "enqueue", "job"]
