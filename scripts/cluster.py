"""`make cluster` / `make cluster-down`: a scaled-out PrimeTrade on this machine.

    python scripts/cluster.py up|down|status [--state .cluster] [--free-ports]

The work is done by tests/cluster.py, which the cluster tests use too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Run as a file (`python scripts/cluster.py`), Python puts only scripts/ on the path.
sys.path.insert(0, str(REPO))

from tests.cluster import Cluster, ClusterError, Ports, install_missing, missing_tools  # noqa: E402
from tests.supervisor import SupervisorError  # noqa: E402


def up(state: Path, *, free_ports: bool = False) -> None:
    install_missing()
    missing = missing_tools()
    if missing:
        raise ClusterError(f"missing: {', '.join(missing)}")
    cluster = Cluster(state=state, ports=Ports.free() if free_ports else Ports.fixed())
    print(f"starting in {state} …", flush=True)
    cluster.up()
    print(f"\n  API through nginx:  {cluster.url}/api/v1   (docs {cluster.url}/docs)")
    for index, url in enumerate(cluster.instance_urls, start=1):
        print(f"  instance {index}:         {url}")
    print(f"  PostgreSQL primary: {cluster.database_url(cluster.ports.primary)}")
    print(f"  PostgreSQL replica: {cluster.database_url(cluster.ports.replica)}")
    print(f"  Redis:              {cluster.redis_url}")
    print(f"  logs:               {state / 'logs'}/\n  stop with:          make cluster-down")


def down(state: Path, *, free_ports: bool = False) -> None:
    if not state.exists():
        print(f"no cluster in {state}")
        return
    Cluster.load(state).down()
    print(f"stopped, and removed {state}")


def status(state: Path, *, free_ports: bool = False) -> None:
    if not state.exists():
        print(f"no cluster in {state}")
        return
    for name, state_of in Cluster.load(state).status().items():
        print(f"  {name:<18} {state_of}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--state", type=Path, default=REPO / ".cluster", help="state folder")
    parser.add_argument(
        "--free-ports",
        action="store_true",
        help="take ports the kernel says are free instead of 8080, 8101-8103, 15432-15433, 16379",
    )
    arguments = parser.parse_args()
    command = {"up": up, "down": down, "status": status}[arguments.command]
    try:
        command(arguments.state.resolve(), free_ports=arguments.free_ports)
    except (ClusterError, SupervisorError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
