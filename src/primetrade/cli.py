"""`primetrade`: serve, worker, scheduler, migrate, create-admin, demo, openapi."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import orjson
import typer
from pydantic import ValidationError

from primetrade.settings import get_settings

cli = typer.Typer(
    help="PrimeTrade Tasks: the task service and its chores.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply migrations before serving.")
    ] = True,
) -> None:
    """Serve the API (and docs at /docs)."""
    import uvicorn

    from primetrade.server import run

    settings = get_settings()
    if migrate_first:
        _upgrade(settings.database_url)
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its samples here; /metrics adds them up across workers.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="primetrade-metrics-")
    signal.signal(signal.SIGTERM, _stopped)
    config = uvicorn.Config(
        "primetrade.main:app",
        host=host,
        port=port,
        workers=None if reload else workers,
        reload=reload,
        proxy_headers=False,  # the app applies TRUSTED_PROXIES itself
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=20,
        log_config=None,
    )
    run(config)


def _stopped(_signum: int, _frame: object) -> None:
    # uvicorn re-raises SIGTERM once it has shut down gracefully; left at the default action,
    # that kills the process with the signal, and supervisors read a clean stop as a crash.
    raise SystemExit(0)


@cli.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply database migrations up to REVISION."""
    _upgrade(get_settings().database_url, revision)
    typer.echo(f"database at {revision}")


def _upgrade(url: str, revision: str = "head") -> None:
    from primetrade.migrations import upgrade

    upgrade(url, revision)


@cli.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(prompt=True, help="The admin's email.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, confirmation_prompt=True, envvar="ADMIN_PASSWORD"
        ),
    ],
    full_name: Annotated[str | None, typer.Option(help="Display name.")] = None,
) -> None:
    """Create an admin account, or promote an existing one (the only way to make the first)."""
    from primetrade.bootstrap import ensure_admin

    try:
        created = asyncio.run(ensure_admin(get_settings(), email, password, full_name))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"{'created' if created else 'promoted'} admin {email.strip().lower()}")


@cli.command()
def demo(
    email: Annotated[str, typer.Option(help="The demo user's email.")] = "demo@example.com",
    password: Annotated[str, typer.Option(help="The demo user's password.")] = "Demo-password-1",  # noqa: S107
    tasks: Annotated[int, typer.Option(min=1, max=10_000, help="How many tasks.")] = 40,
) -> None:
    """Seed a demo user with realistic tasks."""
    from primetrade.bootstrap import seed_demo

    count = asyncio.run(seed_demo(get_settings(), email, password, tasks))
    typer.echo(f"demo user {email} / {password} has {count} tasks")


@cli.command()
def openapi(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default stdout).")
    ] = None,
) -> None:
    """Write the OpenAPI spec as JSON."""
    from primetrade.app import create_app

    # The spec needs no database: describe an app over an in-memory one, then close it.
    described = create_app(
        get_settings().model_copy(update={"database_url": "sqlite+aiosqlite:///:memory:"})
    )
    try:
        document = described.openapi()
    finally:
        asyncio.run(described.state.runtime.close())
    spec = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    if output is None:
        sys.stdout.write(spec.decode() + "\n")
    else:
        output.write_bytes(spec + b"\n")
        typer.echo(f"wrote {output}")


@cli.command()
def worker(
    processes: Annotated[
        int, typer.Option(min=1, help="Worker processes (default: one per CPU).")
    ] = os.cpu_count() or 1,
    threads: Annotated[int, typer.Option(min=1, help="Jobs run at once per process.")] = 8,
    metrics_host: Annotated[str, typer.Option(help="Interface of the metrics endpoint.")] = (
        "127.0.0.1"
    ),
    metrics_port: Annotated[
        int, typer.Option(min=0, max=65535, help="Serve /metrics here (0: off).")
    ] = 9191,
) -> None:
    """Run jobs from the broker (BROKER_URL): retries, dead letters, acknowledged when done."""
    from primetrade.jobs.commands import run_worker

    try:
        status = run_worker(
            get_settings(),
            processes=processes,
            threads=threads,
            metrics_host=metrics_host,
            metrics_port=metrics_port,
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    raise typer.Exit(status)


@cli.command()
def scheduler(
    heartbeat_file: Annotated[
        Path | None,
        typer.Option(help="Touch this file after every check of the schedule (for health checks)."),
    ] = None,
) -> None:
    """Fire the periodic jobs (one firing per period, however many schedulers run)."""
    from primetrade.jobs.commands import run_scheduler

    asyncio.run(run_scheduler(get_settings(), heartbeat=heartbeat_file))


def main() -> None:
    try:
        cli()
    except ValidationError as exc:
        # Bad settings (environment or .env): one line per problem, not a traceback.
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]).upper()
            where = f"setting {name}: " if name else "settings: "
            typer.echo(f"error: {where}{error['msg'].removeprefix('Value error, ')}", err=True)
        raise SystemExit(2) from None
