"""deploy/pgbouncer/pgbouncer.ini agrees with compose.yaml and the app's settings.

The file's [pgbouncer] section is also what every PgBouncer in the test suite runs with
(tests/pgbouncer.py), so the pooling mode and timeouts checked here are the tested ones.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from primetrade.settings import Settings
from tests.deploy.support import (
    API_SERVICES,
    cli_params,
    compose_app_environment,
    services,
    settings_from,
)
from tests.pgbouncer import shipped_config


def target(database: str) -> dict[str, str]:
    """`host=… port=… dbname=…` of one [databases] entry, as a dict."""
    entry = shipped_config()["databases"][database]
    return dict(pair.split("=", 1) for pair in entry.split())


def api_settings() -> Settings:
    return settings_from(compose_app_environment(services()[API_SERVICES[0]]))


def test_it_pools_transactions_and_gives_up_on_a_dead_server_quickly() -> None:
    pgbouncer = shipped_config()["pgbouncer"]
    assert pgbouncer["pool_mode"] == "transaction"
    # A read queued for a dead replica must fail before the app's own limit, so the app
    # reads from the primary sooner than it would on its own.
    app_limit = api_settings().db_statement_timeout_ms / 1000 + 5
    assert int(pgbouncer["query_wait_timeout"]) < app_limit
    assert int(pgbouncer["server_login_retry"]) <= api_settings().db_replica_check_seconds


def test_its_databases_are_the_servers_compose_runs() -> None:
    settings = api_settings()
    primary = urlsplit(settings.database_url)
    [replica] = [urlsplit(url) for url in settings.read_database_urls]
    for name, url in (("primetrade", primary), ("primetrade_replica", replica)):
        server = target(name)
        assert server["host"] == url.hostname, name
        assert server["host"] in services(), name
        assert int(server["port"]) == (url.port or 5432), name
        assert server["dbname"] == url.path.lstrip("/"), name


def test_it_admits_every_connection_the_compose_apps_may_open() -> None:
    settings = api_settings()
    per_process = settings.db_pool_size + settings.db_max_overflow + settings.db_replica_pool_size
    workers = sum(int(cli_params(services()[name]["command"])["workers"]) for name in API_SERVICES)
    assert int(shipped_config()["pgbouncer"]["max_client_conn"]) >= workers * per_process
