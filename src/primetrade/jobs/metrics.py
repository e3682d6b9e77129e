"""Metrics of background work (served with the others at /metrics, or by the worker)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

JOB_DURATION = Histogram(
    "job_duration_seconds",
    "Time a job's handler ran, by job type and outcome (ok, error, dead).",
    ["job_type", "outcome"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0),
)
JOB_FAILURES = Counter("job_failures_total", "Job attempts that raised, by job type.", ["job_type"])
JOBS_DEAD_LETTERED = Counter(
    "jobs_dead_lettered_total", "Jobs moved to the dead jobs after their last try.", ["job_type"]
)
JOBS_SKIPPED = Counter(
    "jobs_duplicate_deliveries_total",
    "Deliveries of a job that had already finished (skipped).",
    ["job_type"],
)
OUTBOX_PUBLISHED = Counter("outbox_published_total", "Outbox rows handed on.", ["mode"])
OUTBOX_PUBLISH_FAILURES = Counter(
    "outbox_publish_failures_total", "Tries to publish to the broker that failed."
)
# Sampled by the relay of every instance; the newest reading is the one to show.
OUTBOX_BACKLOG = Gauge(
    "outbox_backlog", "Outbox rows not yet handed on.", multiprocess_mode="mostrecent"
)
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_age_seconds",
    "Age of the oldest outbox row not yet handed on (0 when none waits).",
    multiprocess_mode="mostrecent",
)
QUEUE_DEPTH = Gauge(
    "jobs_queue_depth",
    "Jobs waiting to run: in the broker's queue, or (in-process) due outbox rows.",
    multiprocess_mode="mostrecent",
)
DEAD_JOBS = Gauge("jobs_dead", "Dead jobs not yet retried.", multiprocess_mode="mostrecent")
MAIL_SENT = Counter("mail_sent_total", "Emails handed to the mail backend.", ["template"])
MAIL_SKIPPED = Counter(
    "mail_skipped_total",
    "Emails not sent: a cap was reached or the key was sent already.",
    ["reason"],
)


def expose_job_types(job_types: Iterable[str]) -> None:
    """Start every job type's series at zero in a process that runs jobs.

    A labelled series appears only once it is first touched, so without this a failure rate
    or a per-type panel has no data until the first failure of that type, and an alert on
    `rate(job_failures_total[5m])` cannot tell "no failures" from "no such series".
    """
    for job_type in job_types:
        for outcome in ("ok", "error", "dead"):
            JOB_DURATION.labels(job_type, outcome)
        for counter in (JOB_FAILURES, JOBS_DEAD_LETTERED, JOBS_SKIPPED):
            counter.labels(job_type)
