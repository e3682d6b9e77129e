"""`make bench`: load-test the product on PostgreSQL beside the ceiling app, then on SQLite.

Everything runs on 127.0.0.1: two fresh PostgreSQL databases, the ceiling app, the product
(seeded through its public API), and wrk with bench/wrk/api.lua. The report is printed and
written to bench/results/latest.md; server and wrk output go to bench/results/logs/.
Every process started here is stopped and both databases are dropped at the end
(`--keep` leaves the databases). `--help` lists the knobs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NoReturn

import orjson
from harness import report, seed, services
from harness.loadgen import (
    CpuUse,
    LoadSpec,
    WrkResult,
    WrkSettings,
    cpu_sample,
    cpu_use,
    finish_wrk,
    start_wrk,
)
from harness.services import LOOPBACK, Service

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
BIN = Path(sys.executable).parent
# The shared folder lies beside the checkout (`../shared/bench/ceiling/`).
DEFAULT_CEILING_DIR = BENCH_DIR.parent.parent / "shared" / "bench" / "ceiling"
BENCH_DB = "primetrade_bench"
SCALE_DB = "primetrade_bench_scale"
CEILING_DB = "primetrade_ceiling"
DATABASES = (BENCH_DB, SCALE_DB, CEILING_DB)
INSTANCES = 3
NGINX_CONFIG = BENCH_DIR.parent / "deploy" / "nginx" / "nginx.conf"
LIST_PATH = "/api/v1/tasks?limit=20"
API = "/api/v1"
SAMPLE_SECONDS = 1.0
DRAIN_SECONDS = 20.0
DRAINED_CORES = 0.15  # servers + their PostgreSQL backends below this: nothing left to do


@dataclass(frozen=True)
class Options:
    duration: int
    warmup: int
    connections: int
    threads: int
    timeout: int
    workers: int
    sqlite_workers: int
    users: int
    tasks_per_user: int
    search_word: str
    skip_sqlite: bool
    skip_scaleout: bool
    redis_url: str
    keep: bool
    settle: int
    pairs: int
    ceiling_dir: Path


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add = parser.add_argument
    add("--duration", type=int, default=10, help="seconds of load per scenario (default 10)")
    add("--warmup", type=int, default=2, help="unmeasured seconds before each (default 2)")
    add("--connections", type=int, default=64, help="wrk connections (default 64)")
    add("--threads", type=int, default=2, help="wrk threads (default 2)")
    add("--timeout", type=int, default=10, help="wrk per-request timeout, s (default 10)")
    add("--workers", type=int, default=2, help="server worker processes (default 2)")
    add("--sqlite-workers", type=int, default=1, help="workers on SQLite (default 1)")
    add("--users", type=int, default=10, help="seeded users (default 10)")
    add("--tasks-per-user", type=int, default=20, help="tasks per seeded user (default 20)")
    add("--search-word", default="review", help="the q= of the search scenario")
    add("--skip-sqlite", action="store_true", help="leave out the SQLite scenario")
    add(
        "--skip-scaleout",
        action="store_true",
        help="leave out the Redis cache and nginx + 3 instances scenarios",
    )
    add(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="Redis for the scale-out scenarios (keys under a prefix of this run, removed after)",
    )
    add("--keep", action="store_true", help="keep the two databases for inspection")
    add(
        "--settle",
        type=int,
        default=10,
        help="before each scenario, wait up to this many seconds for other processes "
        "to leave the CPUs idle (default 10; 0: do not wait)",
    )
    add(
        "--pairs",
        type=int,
        default=3,
        help="side-by-side measurements taken in turn; the pair with the median ratio "
        "(of an even number, the lower) is reported (default 3)",
    )
    add(
        "--ceiling-dir",
        type=Path,
        default=Path(os.environ.get("BENCH_CEILING_DIR", DEFAULT_CEILING_DIR)),
        help="where the ceiling app lives (app.py, setup_db.sql, make_token.py)",
    )
    args = parser.parse_args(argv)
    if args.connections < args.threads or min(args.duration, args.threads, args.pairs) < 1:
        parser.error("need duration, threads, pairs ≥ 1 and connections ≥ threads")
    if min(args.workers, args.sqlite_workers) < 1 or min(args.warmup, args.settle) < 0:
        parser.error("need workers ≥ 1 and warmup, settle ≥ 0")
    if args.users < 4 or args.tasks_per_user < 20:
        parser.error("need at least 4 users and 20 tasks per user (the list reads 20)")
    return Options(**vars(args))


@dataclass
class Run:
    """One benchmark run: its options, the servers it started, the results so far."""

    opts: Options
    workdir: Path
    log_dir: Path
    stack: contextlib.ExitStack
    live: list[Service] = field(default_factory=list)
    results: list[WrkResult] = field(default_factory=list)
    service_logs: list[Path] = field(default_factory=list)
    ceiling: WrkResult | None = None
    product_list: WrkResult | None = None
    storm: WrkResult | None = None
    scale: ScaleOut | None = None

    @property
    def wrk(self) -> WrkSettings:
        o = self.opts
        return WrkSettings(o.threads, o.connections, o.duration, o.timeout, self.log_dir)

    def say(self, message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)

    # --- servers ------------------------------------------------------------------------------

    def start(self, name: str, command: list[str], env: dict[str, str], port: int) -> Service:
        self.say(f"starting {name} on port {port}")
        service = services.start_service(
            name, command, port=port, env=env, cwd=self.workdir, log_dir=self.log_dir
        )
        self.live.append(service)
        self.stack.callback(self.stop, service)
        return service

    def stop(self, service: Service) -> None:
        if service in self.live:
            self.say(f"stopping {service.name}")
            service.stop()
            self.live.remove(service)

    # --- load ---------------------------------------------------------------------------------

    def _wrk(self, specs: list[LoadSpec], duration: int) -> list[WrkResult]:
        """Run one wrk per spec at the same time; each stopped if anything goes wrong."""
        processes: list[subprocess.Popen[bytes]] = []
        settings = replace(self.wrk, duration=duration)
        try:
            for spec in specs:
                processes.append(start_wrk(spec, settings, duration))
            return [finish_wrk(p, s, settings) for p, s in zip(processes, specs, strict=True)]
        finally:
            for process in processes:
                if process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)

    def _cpu_window(self) -> CpuUse:
        pgids = [service.pgid for service in self.live]
        before = cpu_sample(pgids, DATABASES)
        time.sleep(SAMPLE_SECONDS)
        return cpu_use(before, cpu_sample(pgids, DATABASES))

    def drain(self) -> None:
        """Wait (bounded) until the servers have finished requests wrk abandoned at its end."""
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline:
            use = self._cpu_window()
            if use.servers + use.postgres < DRAINED_CORES * use.elapsed:
                return
        self.say(f"servers still busy after {DRAIN_SECONDS:.0f} s; going on")

    def settle(self) -> None:
        """Wait (up to --settle seconds) until other processes leave the CPUs mostly idle."""
        deadline = time.monotonic() + self.opts.settle
        noise = self._cpu_window().other_cores
        while noise > report.NOISY_CORES and time.monotonic() < deadline:
            noise = self._cpu_window().other_cores
        if noise > report.NOISY_CORES:
            self.say(f"other processes still use {noise:.2f} cores; measuring anyway")

    def measure(
        self, *specs: LoadSpec, notes: Sequence[str] = (), record: bool = True
    ) -> list[WrkResult]:
        """Settle, warm up, then measure `specs` together; `record`: add them to the report."""
        self.drain()
        self.settle()
        warm_notes: dict[str, str] = {}
        if self.opts.warmup:
            warm = [replace(spec, name=f"warm-up {spec.name}") for spec in specs]
            for spec, r in zip(specs, self._wrk(warm, self.opts.warmup), strict=True):
                if r.errors:
                    warm_notes[spec.name] = f"warm-up had {r.errors} errors: {r.statuses}"
            self.drain()
        self.say("measuring " + " + ".join(spec.name for spec in specs))
        pgids = [service.pgid for service in self.live]
        before = cpu_sample(pgids, DATABASES)
        measured = self._wrk(list(specs), self.opts.duration)
        use = cpu_use(before, cpu_sample(pgids, DATABASES))
        requests = max(1, sum(r.requests for r in measured))
        measured = [
            replace(
                r,
                other_cores=use.other_cores,
                server_ms=1000 * use.servers / requests,
                postgres_ms=1000 * use.postgres / requests,
                notes=[*notes, *filter(None, [warm_notes.get(r.name)])],
            )
            for r in measured
        ]
        for r in measured:
            flag = f"  ⚠ {r.errors} errors {r.statuses}" if r.errors else ""
            self.say(
                f"  {r.name}: {r.rps:.0f} req/s, p50 {r.p50_ms:.1f}, p99 {r.p99_ms:.1f}, "
                f"server CPU {r.server_ms:.2f} ms/req, other CPU {r.other_cores:.2f} cores{flag}"
            )
        if record:
            self.results.extend(measured)
        return measured


# --- the ceiling -----------------------------------------------------------------------------


def start_ceiling(run: Run) -> tuple[Service, str]:
    directory = run.opts.ceiling_dir
    sql = (directory / "setup_db.sql").read_text()
    asyncio.run(services.run_sql_script(CEILING_DB, sql))
    token = subprocess.run(
        [sys.executable, str(directory / "make_token.py")],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    port = services.free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "app:app",
        "--app-dir",
        str(directory),
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--workers",
        str(run.opts.workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
    ]
    env = {**os.environ, "CEILING_DSN": services.postgres_dsn(CEILING_DB)}
    ceiling = run.start("ceiling", command, env, port)
    services.wait_http_ok(ceiling, "/const")
    return ceiling, token


# --- the product -----------------------------------------------------------------------------


def start_product(run: Run, name: str, database_url: str, workers: int, **settings: str) -> Service:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "RATE_LIMIT_ENABLED": "false",
        "ACCESS_LOG": "false",
        "LOG_LEVEL": "WARNING",
        "ENVIRONMENT": "development",
        **settings,
    }
    if workers > 1:
        # What `serve` would do itself, but inside this run's scratch folder.
        metrics = Path(tempfile.mkdtemp(prefix="metrics-", dir=run.workdir))
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    port = services.free_port()
    command = [str(BIN / "primetrade"), "serve", "--host", LOOPBACK, "--port", str(port)]
    product = run.start(name, [*command, "--workers", str(workers)], env, port)
    run.service_logs.append(product.log_path)
    services.wait_http_ok(product, "/ready")
    return product


def seed_product(run: Run, product: Service) -> seed.Seeded:
    opts = run.opts
    # Update targets: with 8 per connection, a task comes round again only after many
    # requests, so even a very slow request is done before the next one for its row.
    writer_tasks = max(8 * opts.connections, 64)
    run.say(
        f"seeding {opts.users} users × {opts.tasks_per_user} tasks, "
        f"a writer with {writer_tasks} tasks, and a sign-in account"
    )
    seeded = asyncio.run(seed.seed(product.base_url, opts.users, opts.tasks_per_user, writer_tasks))
    reader = list_user(seeded)
    page = asyncio.run(seed.fetch_items(product.base_url, reader.token, {"limit": 20}))
    hits = asyncio.run(
        seed.fetch_items(product.base_url, reader.token, {"q": opts.search_word, "limit": 100})
    )
    if page != 20 or hits == 0:
        raise RuntimeError(f"seeding check failed: list has {page} items, search {hits} hits")
    run.say(f"list user has {page} tasks on the first page; q={opts.search_word} finds {hits}")
    return seeded


def list_user(seeded: seed.Seeded) -> seed.Account:
    """The reader whose list is measured (the fourth, like the ceiling's owner 3)."""
    return seeded.readers[3]


def product_scenarios(run: Run, product: Service, seeded: seed.Seeded) -> None:
    """Everything after the list: one task, search, create, update, sign-in, the storm."""
    base, reader, writer = product.base_url, list_user(seeded), seeded.writer
    word = run.opts.search_word
    run.measure(
        LoadSpec(
            "GET /api/v1/tasks/{id}",
            base,
            API + "/tasks/{id}",
            token=reader.token,
            ids=reader.task_ids,
        ),
        notes=[f"round-robin over the user's {len(reader.task_ids)} tasks"],
    )
    path = f"{API}/tasks?q={word}"
    run.measure(LoadSpec("GET " + path, base, path, token=reader.token))
    run.measure(
        LoadSpec("POST /api/v1/tasks", base, API + "/tasks", "POST", writer.token, CREATE_BODY),
        notes=["as the writer account, whose task count grows meanwhile"],
    )
    run.measure(
        LoadSpec(
            "PATCH /api/v1/tasks/{id}",
            base,
            API + "/tasks/{id}",
            "PATCH",
            writer.token,
            PATCH_BODY,
            writer.task_ids,
        ),
        notes=[
            f"no If-Match; round-robin over the writer's {len(writer.task_ids)} seeded tasks, "
            "each wrk thread on its own share, so no two requests change one row at once"
        ],
    )
    login = login_spec(base, seeded.signer)
    run.measure(login)
    storm_list, _ = run.measure(
        LoadSpec("login storm: " + LIST_NAME, base, LIST_PATH, token=reader.token),
        replace(login, name="login storm: POST /api/v1/auth/login"),
        notes=["both at once, each with its own wrk and the connections above"],
    )
    run.storm = storm_list


LIST_NAME = "GET " + LIST_PATH
CREATE_BODY = orjson.dumps(
    {
        "title": "Bench task {n}",
        "description": "Created under load to measure the create path.",
        "priority": "high",
        "tags": ["bench", "ops"],
        "due_at": "2031-01-15T09:00:00Z",
    }
).decode()
PATCH_BODY = '{"title": "Renamed task {n}"}'


def login_spec(base: str, account: seed.Account) -> LoadSpec:
    body = orjson.dumps({"email": account.email, "password": account.password}).decode()
    return LoadSpec("POST /api/v1/auth/login", base, API + "/auth/login", "POST", body=body)


def postgres_phase(run: Run) -> None:
    """The ceiling and the product side by side, then the product's other scenarios."""
    ceiling, ceiling_token = start_ceiling(run)
    product = start_product(
        run,
        "product-postgres",
        services.postgres_dsn(BENCH_DB, "postgresql+asyncpg"),
        run.opts.workers,
    )
    seeded = seed_product(run, product)
    ceiling_spec = LoadSpec("ceiling GET /tasks", ceiling.base_url, "/tasks", token=ceiling_token)
    list_spec = LoadSpec(LIST_NAME, product.base_url, LIST_PATH, token=list_user(seeded).token)
    side_by_side(run, ceiling_spec, list_spec)
    run.stop(ceiling)
    product_scenarios(run, product, seeded)
    run.stop(product)


def side_by_side(
    run: Run, ceiling: LoadSpec, product_list: LoadSpec, *, record: bool = True
) -> tuple[WrkResult, WrkResult]:
    """Ceiling, list, ceiling, list, …: the pair with the median ratio is reported."""
    top, ours = median_pair(run, ceiling, product_list)
    top = replace(top, notes=[*top.notes, CEILING_NOTE])
    if record:
        run.ceiling, run.product_list = top, ours
        run.results += [top, ours]
    return top, ours


def median_pair(run: Run, first: LoadSpec, second: LoadSpec) -> tuple[WrkResult, WrkResult]:
    """`first`, `second`, `first`, … `--pairs` times; the pair with the median ratio.

    The machine's speed drifts between minutes; a ratio of two runs measured one after the
    other holds up much better than one of runs minutes apart, and still varies by a tenth or
    more from pair to pair. The median pair is reported, and of an even number the lower one
    (second / first): the less flattering. The second result's notes list every pair's ratio.
    """
    pairs: list[tuple[WrkResult, WrkResult]] = []
    for _ in range(run.opts.pairs):
        (one,) = run.measure(first, record=False)
        (two,) = run.measure(second, record=False)
        pairs.append((one, two))
    by_ratio = sorted(pairs, key=lambda pair: pair[1].rps / max(pair[0].rps, 1e-9))
    chosen = by_ratio[(len(pairs) - 1) // 2]
    summary = "; ".join(
        f"{two.rps / one.rps:.2f} (other CPU {one.other_cores:.2f} / {two.other_cores:.2f})"
        for one, two in pairs
    )
    note = f"the median of {len(pairs)} side-by-side pairs; ratios: {summary}"
    return chosen[0], replace(chosen[1], notes=[*chosen[1].notes, note])


CEILING_NOTE = "bare Starlette + asyncpg + PyJWT + orjson, 20 rows"


def sqlite_phase(run: Run) -> None:
    workers = run.opts.sqlite_workers
    url = f"sqlite+aiosqlite:///{run.workdir / 'bench.db'}"
    product = start_product(run, "product-sqlite", url, workers)
    seeded = seed_product(run, product)
    run.measure(
        LoadSpec("SQLite " + LIST_NAME, product.base_url, LIST_PATH, token=list_user(seeded).token),
        notes=[f"{workers} worker(s) on one SQLite file (WAL)"],
    )
    run.stop(product)


# --- scale-out: the Redis cache, and many instances behind nginx ------------------------------


@dataclass
class ScaleOut:
    ceiling: WrkResult
    warm: WrkResult
    cold: WrkResult
    nginx: WrkResult
    single: WrkResult
    hits: int
    misses: int


def scaleout_phase(run: Run) -> None:
    """The list from a warm Redis cache beside the ceiling, cold, and through nginx.

    Warm: the same 20-task page again and again, so after the first request every answer
    comes from Redis (principal and page). Cold: another instance with the cache switched
    off, so every answer is built from PostgreSQL (Redis still holds limits and
    revocations). nginx: INSTANCES single-worker instances behind deploy/nginx/nginx.conf,
    in turn with the warm instance reached directly (which waits idle meanwhile): on 2 cores
    both use every core, so this measures what the proxy hop costs, not scaling.
    """
    prefix = f"bench-{os.getpid()}-{int(time.time())}:"
    shared = {"REDIS_URL": run.opts.redis_url, "REDIS_PREFIX": prefix}
    cleanup = services.delete_redis_prefix(run.opts.redis_url, prefix)
    run.stack.callback(asyncio.run, cleanup)
    database = services.postgres_dsn(SCALE_DB, "postgresql+asyncpg")
    ceiling, ceiling_token = start_ceiling(run)
    warm = start_product(run, "product-redis", database, run.opts.workers, **shared)
    seeded = seed_product(run, warm)
    token = list_user(seeded).token
    before = asyncio.run(services.cache_counts(warm.base_url, "task_list"))
    ceiling_spec = LoadSpec(
        "ceiling GET /tasks (beside the cache)", ceiling.base_url, "/tasks", token=ceiling_token
    )
    warm_spec = LoadSpec("Redis warm cache: " + LIST_NAME, warm.base_url, LIST_PATH, token=token)
    top, ours = side_by_side(run, ceiling_spec, warm_spec, record=False)
    after = asyncio.run(services.cache_counts(warm.base_url, "task_list"))
    run.stop(ceiling)

    cold_product = start_product(
        run, "product-redis-nocache", database, run.opts.workers, CACHE_ENABLED="false", **shared
    )
    (cold,) = run.measure(
        LoadSpec("Redis, cache off: " + LIST_NAME, cold_product.base_url, LIST_PATH, token=token),
        record=False,
        notes=["every page built from PostgreSQL"],
    )
    run.stop(cold_product)

    instances = [
        start_product(run, f"product-instance-{n}", database, 1, **shared)
        for n in range(1, INSTANCES + 1)
    ]
    proxy = start_nginx(run, [instance.port for instance in instances])
    name = f"nginx + {INSTANCES} instances: {LIST_NAME}"
    direct_spec = replace(warm_spec, name="Redis warm cache, direct (beside nginx): " + LIST_NAME)
    # Against the warm instance: both use every core (its workers, or the instances), so the
    # difference is what nginx and the extra hop cost.
    direct, behind = median_pair(
        run, direct_spec, LoadSpec(name, proxy.base_url, LIST_PATH, token=token)
    )
    behind = replace(
        behind,
        notes=[f"least_conn over {INSTANCES} single-worker instances, warm cache", *behind.notes],
    )
    run.stop(warm)
    hits, misses = after[0] - before[0], after[1] - before[1]
    run.scale = ScaleOut(top, ours, cold, behind, direct, hits, misses)
    run.results += [top, ours, cold, direct, behind]


def start_nginx(run: Run, ports: list[int]) -> Service:
    """nginx with the deployment's own configuration, on a free loopback port."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    prefix = run.workdir / "nginx"
    prefix.mkdir()
    port = services.free_port()
    source = NGINX_CONFIG.read_text()
    if "listen 8080;" not in source:
        raise RuntimeError(f"{NGINX_CONFIG} no longer has `listen 8080;`")
    (prefix / "nginx.conf").write_text(source.replace("listen 8080;", f"listen {LOOPBACK}:{port};"))
    upstreams = [f"server {LOOPBACK}:{p} max_fails=1 fail_timeout=5s;" for p in ports]
    (prefix / "upstreams.conf").write_text("\n".join(upstreams) + "\n")
    command = [nginx, "-p", f"{prefix}/", "-c", str(prefix / "nginx.conf"), "-e", "stderr"]
    proxy = run.start("nginx", [*command, "-g", "daemon off;"], dict(os.environ), port)
    services.wait_http_ok(proxy, "/health")
    return proxy


# --- report ----------------------------------------------------------------------------------

LOG_PROBLEM = re.compile(r"traceback|\b(error|critical|exception|warning)\b", re.IGNORECASE)


def service_problems(logs: Sequence[Path], limit: int = 12) -> list[str]:
    """Distinct warning/error lines the product wrote (its log level is WARNING)."""
    seen: dict[str, int] = {}
    for log in logs:
        with contextlib.suppress(OSError):
            for line in log.read_text(errors="replace").splitlines():
                if LOG_PROBLEM.search(line):
                    key = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z?\s*", "", line.strip())[:240]
                    seen[key] = seen.get(key, 0) + 1
    return [f"{count}× {line}" for line, count in list(seen.items())[:limit]]


def render(run: Run, conditions: report.Conditions) -> str:
    lines = [*report.header(conditions), *report.results_table(run.results)]
    if run.ceiling and run.product_list:
        lines.append(report.ratio_line(run.ceiling, run.product_list))
        lines.append("")
        lines.append(report.cpu_line(run.ceiling, run.product_list))
        lines.append("")
    if run.product_list and run.storm:
        lines.append(report.storm_line(run.product_list, run.storm))
        lines.append("")
    if run.scale:
        lines += report.scaleout_lines(
            run.scale.ceiling,
            run.scale.warm,
            run.scale.cold,
            run.scale.single,
            run.scale.nginx,
            run.scale.hits,
            run.scale.misses,
        )
    lines += ["## Details", "", *report.details(run.results)]
    problems = service_problems(run.service_logs)
    lines += ["## Product log (warnings and errors)", ""]
    lines += [f"    {line}" for line in problems] if problems else ["none"]
    logs = run.log_dir.relative_to(BENCH_DIR.parent)
    lines += ["", f"Server and wrk output: {logs}/", ""]
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------


def _terminate(signum: int, _frame: object) -> NoReturn:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def databases(run: Run) -> Iterator[None]:
    """Fresh databases for the run, dropped afterwards unless --keep."""
    for name in DATABASES:
        asyncio.run(services.recreate_database(name))
    try:
        yield
    finally:
        if run.opts.keep:
            run.say(f"kept databases {', '.join(DATABASES)}")
        else:
            for name in DATABASES:
                asyncio.run(services.drop_database(name))


def execute(opts: Options) -> tuple[str, bool]:
    """Run every scenario; the report, and whether any scenario saw errors."""
    shutil.rmtree(RESULTS_DIR / "logs", ignore_errors=True)
    log_dir = RESULTS_DIR / "logs"
    log_dir.mkdir(parents=True)
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="primetrade-bench-")))
        run = Run(opts, workdir, log_dir, stack)
        conditions = report.Conditions(
            postgres_version=asyncio.run(services.server_version()),
            threads=opts.threads,
            connections=opts.connections,
            duration=opts.duration,
            workers=opts.workers,
            sqlite_workers=None if opts.skip_sqlite else opts.sqlite_workers,
            load_before=report.load_average(),
        )
        stack.enter_context(databases(run))
        postgres_phase(run)
        if not opts.skip_scaleout:
            scaleout_phase(run)
        if not opts.skip_sqlite:
            sqlite_phase(run)
        return render(run, conditions), any(r.errors for r in run.results)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    # Ctrl-C even when started in the background (where SIGINT is inherited as ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        text, errors = execute(opts)
    except KeyboardInterrupt:
        print("[bench] interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    (RESULTS_DIR / "latest.md").write_text(text)
    print(text)
    verdict = "some scenarios had errors (⚠)" if errors else "no errors"
    print(f"[bench] written to bench/results/latest.md; {verdict}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
