"""Listing tasks: filters, sorts, keyset pagination, cursors, isolation and query shape."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, insert, text, update

from primetrade.tasks.models import Task, TaskPriority
from tests.helpers import API, PROBLEM, Account, Api, assert_problem

RANK = {"low": 1, "medium": 2, "high": 3, "urgent": 4}
SORTS = ["created_at", "updated_at", "due_at", "priority", "title"]
ALL_SORTS = SORTS + [f"-{name}" for name in SORTS]
BASE = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)


def iso(value: datetime) -> str:
    return value.isoformat()


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def walk(api: Api, who: Account, limit: int, **params: Any) -> list[str]:
    """Every id of a list, page by page, checking each page's size and cursor."""
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(200):
        query = {**params, "limit": limit}
        if cursor is not None:
            query["cursor"] = cursor
        response = await api.list_tasks(who, **query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
        assert len(body["items"]) == limit
    raise AssertionError("pagination did not end")


def sort_value(task: dict[str, Any], name: str) -> Any:
    if name == "priority":
        return RANK[task["priority"]]
    if name == "title":
        return task["title"].casefold()
    value = task[name]
    return None if value is None else parse(value)


def expected_order(tasks: list[dict[str, Any]], sort: str) -> list[str]:
    """The documented order: by the value, ties by id in the same direction, NULLs last."""
    descending, name = sort.startswith("-"), sort.lstrip("-")
    present = [t for t in tasks if sort_value(t, name) is not None]
    missing = [t for t in tasks if sort_value(t, name) is None]
    present.sort(key=lambda t: (sort_value(t, name), uuid.UUID(t["id"])), reverse=descending)
    missing.sort(key=lambda t: uuid.UUID(t["id"]), reverse=descending)
    return [t["id"] for t in present + missing]


async def set_columns(app: Any, task_id: str, **values: Any) -> None:
    async with app.state.runtime.engine.begin() as connection:
        await connection.execute(update(Task).where(Task.id == uuid.UUID(task_id)).values(**values))


async def all_tasks(api: Api, who: Account) -> list[dict[str, Any]]:
    response = await api.list_tasks(who, limit=100)
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def make_dataset(api: Api, app: Any, who: Account) -> list[dict[str, Any]]:
    """25 tasks with ties in every sort key, NULL due dates and mixed-case titles."""
    titles = ["alpha", "Alpha", "ALPHA", "beta", "Beta", "gamma", "delta", "Delta", "epsilon"]
    priorities = ["low", "medium", "high", "urgent", "medium", "medium", "high"]
    created = []
    for i in range(25):
        due: str | None
        if i % 5 == 0:
            due = None
        elif i % 3 == 0:
            due = iso(BASE)  # a tie shared by several tasks
        else:
            due = iso(BASE + timedelta(hours=i))
        fields: dict[str, Any] = {
            "title": titles[i % len(titles)],
            "priority": priorities[i % len(priorities)],
        }
        if due is not None:
            fields["due_at"] = due
        created.append(await api.create_task(who, **fields))
    # Ties in created_at and updated_at, which creation through the API never makes.
    for task in created[3:7]:
        await set_columns(app, task["id"], created_at=BASE, updated_at=BASE)
    for task in created[10:13]:
        await set_columns(app, task["id"], updated_at=BASE + timedelta(days=1))
    tasks = await all_tasks(api, who)
    assert {t["id"] for t in tasks} == {t["id"] for t in created}
    return tasks


# --- default order, limits ------------------------------------------------------------------


async def test_empty_list(api: Api):
    alice = await api.account()
    response = await api.list_tasks(alice)
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None, "total": None}


async def test_default_order_is_newest_first(api: Api):
    alice = await api.account()
    created = [(await api.create_task(alice))["id"] for _ in range(4)]
    assert ids(await api.list_tasks(alice)) == created[::-1]


async def test_default_limit_is_20(api: Api):
    alice = await api.account()
    for _ in range(21):
        await api.create_task(alice)
    body = (await api.list_tasks(alice)).json()
    assert len(body["items"]) == 20
    assert body["next_cursor"] is not None


async def test_limit_of_100_is_allowed(api: Api):
    alice = await api.account()
    await api.create_task(alice)
    assert len(ids(await api.list_tasks(alice, limit=100))) == 1


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten"])
async def test_limit_out_of_range_is_422(api: Api, limit):
    alice = await api.account()
    assert_problem(await api.list_tasks(alice, limit=limit), 422, "validation_failed")


async def test_last_page_has_no_cursor_even_when_full(api: Api):
    alice = await api.account()
    for _ in range(8):
        await api.create_task(alice)
    first = (await api.list_tasks(alice, limit=4)).json()
    assert first["next_cursor"] is not None
    second = (await api.list_tasks(alice, limit=4, cursor=first["next_cursor"])).json()
    assert len(second["items"]) == 4
    assert second["next_cursor"] is None


async def test_list_needs_a_token(client):
    response = await client.get(f"{API}/tasks")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)


# --- sorting and pagination ------------------------------------------------------------------


async def test_every_sort_walks_every_task_once_in_order(api: Api, app):
    alice = await api.account()
    tasks = await make_dataset(api, app, alice)
    for sort in ALL_SORTS:
        walked = await walk(api, alice, 4, sort=sort)
        assert len(walked) == len(set(walked)) == 25, sort
        assert walked == expected_order(tasks, sort), sort


async def test_single_page_order_matches_the_walk(api: Api, app):
    alice = await api.account()
    tasks = await make_dataset(api, app, alice)
    for sort in ALL_SORTS:
        assert ids(await api.list_tasks(alice, sort=sort, limit=100)) == expected_order(tasks, sort)


async def test_priority_order_is_urgency_not_alphabetical(api: Api):
    alice = await api.account()
    for priority in ("medium", "urgent", "low", "high"):
        await api.create_task(alice, priority=priority)
    items = (await api.list_tasks(alice, sort="priority")).json()["items"]
    assert [t["priority"] for t in items] == ["low", "medium", "high", "urgent"]
    items = (await api.list_tasks(alice, sort="-priority")).json()["items"]
    assert [t["priority"] for t in items] == ["urgent", "high", "medium", "low"]


async def test_title_sort_ignores_case(api: Api):
    alice = await api.account()
    for title in ("banana", "Apple", "cherry", "apricot", "Banana split"):
        await api.create_task(alice, title=title)
    items = (await api.list_tasks(alice, sort="title")).json()["items"]
    assert [t["title"] for t in items] == ["Apple", "apricot", "banana", "Banana split", "cherry"]


async def test_tasks_without_due_date_come_last_both_ways(api: Api):
    alice = await api.account()
    undated = (await api.create_task(alice))["id"]
    early = (await api.create_task(alice, due_at=iso(BASE)))["id"]
    late = (await api.create_task(alice, due_at=iso(BASE + timedelta(days=1))))["id"]
    assert ids(await api.list_tasks(alice, sort="due_at")) == [early, late, undated]
    assert ids(await api.list_tasks(alice, sort="-due_at")) == [late, early, undated]


async def test_pagination_through_a_run_of_null_due_dates(api: Api):
    alice = await api.account()
    dated = (await api.create_task(alice, due_at=iso(BASE)))["id"]
    undated = [(await api.create_task(alice))["id"] for _ in range(5)]
    ascending = sorted(undated, key=uuid.UUID)
    assert await walk(api, alice, 2, sort="due_at") == [dated, *ascending]
    assert await walk(api, alice, 2, sort="-due_at") == [dated, *ascending[::-1]]


async def test_unknown_sort_is_422(api: Api):
    alice = await api.account()
    for sort in ("owner_id", "-relevance", "status", "created"):
        assert_problem(await api.list_tasks(alice, sort=sort), 422, "validation_failed")


async def test_walking_with_filters_and_sort(api: Api, app):
    alice = await api.account()
    tasks = await make_dataset(api, app, alice)
    wanted = [t for t in tasks if t["priority"] in {"medium", "urgent"}]
    walked = await walk(api, alice, 3, sort="-due_at", priority=["medium", "urgent"])
    assert walked == expected_order(wanted, "-due_at")


async def test_deleting_the_cursor_row_does_not_break_the_next_page(api: Api, client):
    alice = await api.account()
    created = [(await api.create_task(alice))["id"] for _ in range(6)]
    newest_first = created[::-1]
    first = (await api.list_tasks(alice, limit=3)).json()
    assert [t["id"] for t in first["items"]] == newest_first[:3]
    deleted = await client.delete(f"{API}/tasks/{newest_first[2]}", headers=alice.headers)
    assert deleted.status_code == 204
    second = await api.list_tasks(alice, limit=3, cursor=first["next_cursor"])
    assert ids(second) == newest_first[3:]


async def test_tasks_created_after_the_first_page_do_not_shift_later_pages(api: Api):
    alice = await api.account()
    created = [(await api.create_task(alice))["id"] for _ in range(4)]
    first = (await api.list_tasks(alice, limit=2)).json()
    await api.create_task(alice)
    second = await api.list_tasks(alice, limit=2, cursor=first["next_cursor"])
    assert ids(second) == created[:2][::-1]


# --- cursors ------------------------------------------------------------------------------


async def first_cursor(api: Api, who: Account, **params: Any) -> str:
    for _ in range(3):
        await api.create_task(who, due_at=iso(BASE))
    body = (await api.list_tasks(who, limit=1, **params)).json()
    cursor: str = body["next_cursor"]
    assert cursor
    return cursor


def reencode(cursor: str, edit: Any) -> str:
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    signature, payload = raw[:16], json.loads(raw[16:])
    edit(payload)
    forged = signature + json.dumps(payload).encode()
    return base64.urlsafe_b64encode(forged).rstrip(b"=").decode()


async def test_a_forged_cursor_is_400(api: Api):
    alice = await api.account()
    cursor = await first_cursor(api, alice)
    forged = reencode(cursor, lambda payload: payload.update(v="1999-01-01T00:00:00+00:00"))
    assert forged != cursor
    assert_problem(await api.list_tasks(alice, cursor=forged), 400, "invalid_cursor")


async def test_a_cursor_with_a_changed_character_is_400(api: Api):
    alice = await api.account()
    cursor = await first_cursor(api, alice)
    middle = len(cursor) // 2
    flipped = "A" if cursor[middle] != "A" else "B"
    tampered = cursor[:middle] + flipped + cursor[middle + 1 :]
    assert_problem(await api.list_tasks(alice, cursor=tampered), 400, "invalid_cursor")


@pytest.mark.parametrize("cursor", ["garbage", "%%%", "", "é" * 10, "A" * 1000])
async def test_nonsense_cursor_is_400(api: Api, cursor):
    alice = await api.account()
    await api.create_task(alice)
    assert_problem(await api.list_tasks(alice, cursor=cursor), 400, "invalid_cursor")


async def test_overlong_cursor_is_422(api: Api):
    alice = await api.account()
    assert_problem(await api.list_tasks(alice, cursor="A" * 1025), 422, "validation_failed")


@pytest.mark.parametrize(
    ("made_for", "used_with"),
    [
        ("-created_at", "created_at"),
        ("created_at", "updated_at"),
        ("due_at", "-due_at"),
        ("priority", "title"),
        ("-title", "-created_at"),
    ],
)
async def test_a_cursor_from_another_sort_is_400(api: Api, made_for, used_with):
    alice = await api.account()
    cursor = await first_cursor(api, alice, sort=made_for)
    response = await api.list_tasks(alice, sort=used_with, cursor=cursor)
    assert_problem(response, 400, "invalid_cursor")
    assert response.status_code == 400
    # The same cursor still works with the sort it was made for.
    assert (await api.list_tasks(alice, sort=made_for, cursor=cursor)).status_code == 200


async def test_a_cursor_from_the_default_sort_is_rejected_by_search(api: Api):
    alice = await api.account()
    cursor = await first_cursor(api, alice)
    assert_problem(await api.list_tasks(alice, q="task", cursor=cursor), 400, "invalid_cursor")


# --- filters -----------------------------------------------------------------------------------


async def test_status_filter_is_repeatable(api: Api):
    alice = await api.account()
    todo = (await api.create_task(alice, status="todo"))["id"]
    doing = (await api.create_task(alice, status="in_progress"))["id"]
    done = (await api.create_task(alice, status="done"))["id"]
    assert ids(await api.list_tasks(alice, status="todo")) == [todo]
    assert ids(await api.list_tasks(alice, status="in_progress")) == [doing]
    assert set(ids(await api.list_tasks(alice, status=["todo", "done"]))) == {todo, done}


async def test_priority_filter_is_repeatable(api: Api):
    alice = await api.account()
    made = {p.value: (await api.create_task(alice, priority=p.value))["id"] for p in TaskPriority}
    assert ids(await api.list_tasks(alice, priority="urgent")) == [made["urgent"]]
    both = set(ids(await api.list_tasks(alice, priority=["low", "high"])))
    assert both == {made["low"], made["high"]}


async def test_tag_filter_needs_every_tag(api: Api):
    alice = await api.account()
    both = (await api.create_task(alice, tags=["work", "urgent-ish"]))["id"]
    work = (await api.create_task(alice, tags=["work"]))["id"]
    await api.create_task(alice, tags=["home"])
    await api.create_task(alice)
    assert set(ids(await api.list_tasks(alice, tag="work"))) == {both, work}
    assert ids(await api.list_tasks(alice, tag=["work", "urgent-ish"])) == [both]
    assert ids(await api.list_tasks(alice, tag=["work", "home"])) == []


async def test_tag_filter_is_normalised_like_tags(api: Api):
    alice = await api.account()
    task = (await api.create_task(alice, tags=["Q3 Review"]))["id"]
    assert ids(await api.list_tasks(alice, tag=" q3  REVIEW ")) == [task]


async def test_tag_filter_matches_whole_tags_only(api: Api):
    alice = await api.account()
    await api.create_task(alice, tags=["workshop"])
    assert ids(await api.list_tasks(alice, tag="work")) == []


async def test_due_window_is_after_inclusive_before_exclusive(api: Api):
    alice = await api.account()
    made = {
        hour: (await api.create_task(alice, due_at=iso(BASE + timedelta(hours=hour))))["id"]
        for hour in (0, 1, 2, 3)
    }
    await api.create_task(alice)  # no due date: outside every window
    after = iso(BASE + timedelta(hours=1))
    before = iso(BASE + timedelta(hours=3))
    assert set(ids(await api.list_tasks(alice, due_after=after))) == {made[1], made[2], made[3]}
    assert set(ids(await api.list_tasks(alice, due_before=before))) == {made[0], made[1], made[2]}
    window = await api.list_tasks(alice, due_after=after, due_before=before)
    assert set(ids(window)) == {made[1], made[2]}


async def test_due_window_accepts_any_offset(api: Api):
    alice = await api.account()
    task = (await api.create_task(alice, due_at=iso(BASE)))["id"]
    # BASE is 12:00 UTC, which is 14:00 at +02:00.
    assert ids(await api.list_tasks(alice, due_before="2030-03-01T14:00:01+02:00")) == [task]
    assert ids(await api.list_tasks(alice, due_before="2030-03-01T14:00:00+02:00")) == []


async def test_naive_due_filters_are_422(api: Api):
    alice = await api.account()
    for name in ("due_before", "due_after"):
        response = await api.list_tasks(alice, **{name: "2030-01-01T00:00:00"})
        assert_problem(response, 422, "validation_failed")


async def test_overdue_filter(api: Api):
    alice = await api.account()
    past = iso(datetime.now(UTC) - timedelta(hours=1))
    future = iso(datetime.now(UTC) + timedelta(hours=1))
    overdue = (await api.create_task(alice, due_at=past))["id"]
    overdue_doing = (await api.create_task(alice, due_at=past, status="in_progress"))["id"]
    done_late = (await api.create_task(alice, due_at=past, status="done"))["id"]
    upcoming = (await api.create_task(alice, due_at=future))["id"]
    undated = (await api.create_task(alice))["id"]
    assert set(ids(await api.list_tasks(alice, overdue="true"))) == {overdue, overdue_doing}
    not_overdue = set(ids(await api.list_tasks(alice, overdue="false")))
    assert not_overdue == {done_late, upcoming, undated}


async def test_overdue_must_be_a_boolean(api: Api):
    alice = await api.account()
    assert_problem(await api.list_tasks(alice, overdue="maybe"), 422, "validation_failed")


@pytest.mark.parametrize(
    ("name", "value"), [("status", "finished"), ("priority", "extreme"), ("tag", "x" * 33)]
)
async def test_invalid_filter_values_are_422(api: Api, name, value):
    alice = await api.account()
    assert_problem(await api.list_tasks(alice, **{name: value}), 422, "validation_failed")


async def test_filters_combine(api: Api):
    alice = await api.account()
    past = iso(datetime.now(UTC) - timedelta(days=1))
    match = (await api.create_task(alice, priority="high", tags=["x"], due_at=past))["id"]
    await api.create_task(alice, priority="low", tags=["x"], due_at=past)
    await api.create_task(alice, priority="high", tags=["y"], due_at=past)
    await api.create_task(alice, priority="high", tags=["x"], due_at=past, status="done")
    response = await api.list_tasks(alice, priority="high", tag="x", overdue="true")
    assert ids(response) == [match]


async def test_include_total_counts_every_match_not_just_the_page(api: Api):
    alice = await api.account()
    for _ in range(5):
        await api.create_task(alice, priority="high")
    await api.create_task(alice, priority="low")
    body = (await api.list_tasks(alice, priority="high", limit=2, include_total="true")).json()
    assert len(body["items"]) == 2
    assert body["total"] == 5
    follow = await api.list_tasks(
        alice, priority="high", limit=2, include_total="true", cursor=body["next_cursor"]
    )
    assert follow.json()["total"] == 5
    assert (await api.list_tasks(alice)).json()["total"] is None


# --- isolation ---------------------------------------------------------------------------------


async def test_users_never_see_each_others_tasks(api: Api):
    alice, bob = await api.account(), await api.account()
    alice_ids = {(await api.create_task(alice, tags=["shared"]))["id"] for _ in range(3)}
    bob_ids = {(await api.create_task(bob, tags=["shared"]))["id"] for _ in range(4)}
    assert set(await walk(api, alice, 2)) == alice_ids
    assert set(await walk(api, bob, 2, sort="title")) == bob_ids
    assert set(ids(await api.list_tasks(alice, tag="shared"))) == alice_ids
    assert (await api.list_tasks(bob, include_total="true")).json()["total"] == 4


async def test_another_users_cursor_does_not_reveal_their_tasks(api: Api):
    alice, bob = await api.account(), await api.account()
    for _ in range(3):
        await api.create_task(alice)
    mine = (await api.create_task(bob))["id"]
    cursor = (await api.list_tasks(alice, limit=1)).json()["next_cursor"]
    response = await api.list_tasks(bob, cursor=cursor)
    assert set(ids(response)) <= {mine}


# --- query shape: page N costs what page 1 costs -----------------------------------------------


@contextmanager
def captured_sql(app: Any) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def listener(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    engine = app.state.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def list_queries(statements: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [
        (sql, params)
        for sql, params in statements
        if re.search(r"\bFROM tasks\b", sql) and "ORDER BY" in sql and "count(" not in sql
    ]


def flat(parameters: Any) -> list[Any]:
    if isinstance(parameters, dict):
        return list(parameters.values())
    return list(parameters or ())


@pytest.mark.parametrize("sort", ALL_SORTS)
async def test_deep_pages_use_limit_plus_one_and_no_offset(api: Api, app, sort):
    alice = await api.account()
    for i in range(9):
        await api.create_task(alice, due_at=iso(BASE + timedelta(hours=i % 4)) if i % 3 else None)
    cursor = None
    with captured_sql(app) as statements:
        for _ in range(3):
            params: dict[str, Any] = {"sort": sort, "limit": 3}
            if cursor:
                params["cursor"] = cursor
            cursor = (await api.list_tasks(alice, **params)).json()["next_cursor"]
    queries = list_queries(statements)
    assert len(queries) == 3
    for sql, parameters in queries:
        values = flat(parameters)
        assert re.search(r"\bLIMIT\b", sql)
        if "OFFSET" in sql:
            # SQLite's dialect always renders `OFFSET ?`; it must be a constant 0.
            assert sql.rstrip().endswith("OFFSET ?"), sql
            assert values[-1] == 0
            values = values[:-1]
        assert values[-1] == 4


async def seed_many(app: Any, owner_id: str, count: int) -> None:
    rows = [
        {
            "owner_id": uuid.UUID(owner_id),
            "id": uuid.uuid4(),
            "title": f"bulk {i}",
            "title_key": f"bulk {i}",
            "description": "",
            "status": "todo",
            "priority": list(TaskPriority)[i % 4],
            "due_at": None if i % 4 == 0 else BASE + timedelta(hours=i % 97),
            "tags": [],
            "created_at": BASE + timedelta(seconds=i),
            "updated_at": BASE + timedelta(seconds=i),
            "completed_at": None,
            "version": 1,
        }
        for i in range(count)
    ]
    async with app.state.runtime.engine.begin() as connection:
        await connection.execute(insert(Task.__table__), rows)
        if connection.dialect.name == "postgresql":
            await connection.execute(text("ANALYZE tasks"))
        else:
            await connection.execute(text("ANALYZE"))


async def deep_page_query(api: Api, app: Any, who: Account) -> tuple[str, Any]:
    """The SQL of the list query behind a page far from the start."""
    cursor = None
    for _ in range(15):
        params: dict[str, Any] = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        cursor = (await api.list_tasks(who, **params)).json()["next_cursor"]
    assert cursor
    with captured_sql(app) as statements:
        response = await api.list_tasks(who, limit=10, cursor=cursor)
    assert len(response.json()["items"]) == 10
    [query] = list_queries(statements)
    return query


def plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


async def explain(app: Any, sql: str, parameters: Any) -> list[dict[str, Any]]:
    async with app.state.runtime.engine.connect() as connection:
        rows = await connection.exec_driver_sql(
            "EXPLAIN (ANALYZE, COSTS OFF, FORMAT JSON) " + sql, parameters
        )
        plan = rows.scalar()
    plan = plan if isinstance(plan, list) else json.loads(plan)
    return list(plan_nodes(plan[0]["Plan"]))


async def test_deep_page_walks_the_created_at_index_on_postgres(api: Api, app, engine_name):
    if engine_name != "postgresql":
        pytest.skip("EXPLAIN output checked here is PostgreSQL's")
    alice, bob = await api.account(), await api.account()
    await seed_many(app, alice.id, 3000)
    await seed_many(app, bob.id, 500)
    sql, parameters = await deep_page_query(api, app, alice)
    nodes = await explain(app, sql, parameters)
    # The default list leaves archived tasks out: its partial index over live tasks serves it.
    scans = [n for n in nodes if n.get("Index Name") == "ix_tasks_owner_id_created_at_id_live"]
    assert scans, json.dumps(nodes, indent=1)
    assert not [n for n in nodes if n["Node Type"] in {"Sort", "Incremental Sort", "Seq Scan"}]
    # The cursor position bounds the index range itself: the scan reads the page, nothing more.
    [scan] = scans
    assert "created_at" in scan.get("Index Cond", "")
    assert scan["Actual Rows"] <= 11
    assert scan.get("Rows Removed by Filter", 0) == 0


async def test_deep_page_searches_the_created_at_index_on_sqlite(api: Api, app, engine_name):
    if engine_name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN output checked here is SQLite's")
    alice, bob = await api.account(), await api.account()
    await seed_many(app, alice.id, 3000)
    await seed_many(app, bob.id, 500)
    sql, parameters = await deep_page_query(api, app, alice)
    async with app.state.runtime.engine.connect() as connection:
        plan = " | ".join(
            str(row[-1])
            for row in await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters)
        )
    # The cursor position is part of the index search, not a filter over the rows before it.
    search = r"INDEX ix_tasks_owner_id_created_at_id_live \(owner_id=\? AND \(?created_at[,id)]*<"
    assert re.search(search, plan), plan
    assert "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize("sort", ALL_SORTS)
async def test_every_sort_reads_its_index_in_order_on_postgres(api: Api, app, engine_name, sort):
    if engine_name != "postgresql":
        pytest.skip("EXPLAIN output checked here is PostgreSQL's")
    alice = await api.account()
    await seed_many(app, alice.id, 2000)
    with captured_sql(app) as statements:
        response = await api.list_tasks(alice, sort=sort, limit=10)
    assert len(response.json()["items"]) == 10
    [(sql, parameters)] = list_queries(statements)
    nodes = await explain(app, sql, parameters)
    assert [n for n in nodes if n["Node Type"] == "Index Scan"], nodes
    assert not [n for n in nodes if n["Node Type"] in {"Sort", "Incremental Sort", "Seq Scan"}]
