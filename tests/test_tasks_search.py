"""Full-text search over title and description, identical on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import API, Account, Api, assert_problem

# Created in this order. The expected results below are the same on both engines.
DATA = [
    ("quarterly", "Quarterly report", "Numbers for the board."),
    ("lunch", "Lunch with the team", "Bring the printed report."),
    ("dashboard", "Reporting dashboard", "Charts and tables."),
    ("bike", "Repair the bike", "Chain and brakes."),
    ("finance", "Report for finance", "Monthly report, report everything."),
    ("sync", "Weekly sync", "Nothing to see."),
    ("expenses", "Expense claims", "Attach receipts to the expense report draft."),
]


async def make_data(api: Api, who: Account) -> dict[str, str]:
    made = {}
    for name, title, description in DATA:
        made[name] = (await api.create_task(who, title=title, description=description))["id"]
    return made


def names(response: httpx.Response, made: dict[str, str]) -> list[str]:
    assert response.status_code == 200, response.text
    by_id = {task_id: name for name, task_id in made.items()}
    return [by_id[item["id"]] for item in response.json()["items"]]


async def search(api: Api, who: Account, q: str, **params: Any) -> httpx.Response:
    return await api.list_tasks(who, q=q, **params)


async def walk(api: Api, who: Account, limit: int, **params: Any) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(50):
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await api.list_tasks(who, **query)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("pagination did not end")


# --- matching ------------------------------------------------------------------------------


async def test_ranking_is_the_same_on_every_engine(api: Api):
    alice = await api.account()
    made = await make_data(api, alice)
    # A word in the title and the description, then title matches, then description-only
    # matches; equal ranks newest first.
    response = await search(api, alice, "report")
    assert names(response, made) == ["finance", "dashboard", "quarterly", "expenses", "lunch"]


async def test_title_matches_rank_above_description_only_matches(api: Api):
    alice = await api.account()
    body_only = (await api.create_task(alice, title="Misc", description="plan " * 50))["id"]
    in_title = (await api.create_task(alice, title="Plan the trip", description="x " * 200))["id"]
    short_title = (await api.create_task(alice, title="plan"))["id"]
    ranked = [item["id"] for item in (await search(api, alice, "plan")).json()["items"]]
    # Title matches first (equal ranks newest first), however often the description says it.
    assert ranked == [short_title, in_title, body_only]


async def test_words_match_as_prefixes(api: Api):
    alice = await api.account()
    made = await make_data(api, alice)
    found = names(await search(api, alice, "rep"), made)
    assert found == ["finance", "bike", "dashboard", "quarterly", "expenses", "lunch"]


async def test_search_is_case_insensitive(api: Api):
    alice = await api.account()
    made = await make_data(api, alice)
    assert names(await search(api, alice, "REPORT"), made) == names(
        await search(api, alice, "report"), made
    )
    assert names(await search(api, alice, "QuArTeRlY"), made) == ["quarterly"]


async def test_every_word_must_match(api: Api):
    alice = await api.account()
    made = await make_data(api, alice)
    assert names(await search(api, alice, "report draft"), made) == ["expenses"]
    assert names(await search(api, alice, "report finance"), made) == ["finance"]
    assert names(await search(api, alice, "report bike"), made) == []


async def test_words_may_come_from_title_and_description(api: Api):
    alice = await api.account()
    made = await make_data(api, alice)
    assert names(await search(api, alice, "repair brakes"), made) == ["bike"]


async def test_description_words_are_found(api: Api):
    alice = await api.account()
    made = await make_data(api, alice)
    assert names(await search(api, alice, "numbers board"), made) == ["quarterly"]


async def test_words_are_not_matched_in_the_middle(api: Api):
    alice = await api.account()
    made = await make_data(api, alice)
    assert names(await search(api, alice, "port"), made) == []


async def test_no_match_gives_an_empty_page(api: Api):
    alice = await api.account()
    await make_data(api, alice)
    body = (await search(api, alice, "zebra", include_total="true")).json()
    assert body == {"items": [], "next_cursor": None, "total": 0}


async def test_punctuation_splits_words_the_same_way_on_every_engine(api: Api):
    alice = await api.account()
    task = (
        await api.create_task(
            alice, title="Mail ops@example.com", description="Upgrade to v1.5 via foo_bar/baz"
        )
    )["id"]
    for q in ("example", "com", "ops", "5", "v1", "bar", "baz", "example.com", "foo-bar"):
        found = [item["id"] for item in (await search(api, alice, q)).json()["items"]]
        assert found == [task], q


async def test_accented_words_are_found(api: Api):
    alice = await api.account()
    task = (await api.create_task(alice, title="Réserver le café"))["id"]
    for q in ("café", "CAFÉ", "réserv"):
        found = [item["id"] for item in (await search(api, alice, q)).json()["items"]]
        assert found == [task], q


async def test_only_the_callers_tasks_are_searched(api: Api):
    alice, bob = await api.account(), await api.account()
    mine = (await api.create_task(alice, title="Report mine"))["id"]
    await api.create_task(bob, title="Report theirs")
    found = [item["id"] for item in (await search(api, alice, "report")).json()["items"]]
    assert found == [mine]


# --- search with filters, totals and sorts -------------------------------------------------------


async def test_search_combines_with_filters(api: Api, client):
    alice = await api.account()
    made = await make_data(api, alice)
    for name in ("finance", "lunch"):
        response = await client.patch(
            f"{API}/tasks/{made[name]}",
            json={"status": "done", "priority": "high"},
            headers=alice.headers,
        )
        assert response.status_code == 200
    assert names(await search(api, alice, "report", status="done"), made) == ["finance", "lunch"]
    todo = names(await search(api, alice, "report", status="todo", priority="medium"), made)
    assert todo == ["dashboard", "quarterly", "expenses"]


async def test_search_total_counts_matches(api: Api):
    alice = await api.account()
    await make_data(api, alice)
    body = (await search(api, alice, "report", limit=2, include_total="true")).json()
    assert len(body["items"]) == 2
    assert body["total"] == 5


async def test_search_pages_through_relevance_order(api: Api):
    alice = await api.account()
    made = await make_data(api, alice)
    whole = [item["id"] for item in (await search(api, alice, "rep", limit=100)).json()["items"]]
    assert len(whole) == 6
    for limit in (1, 2, 4):
        assert await walk(api, alice, limit, q="rep") == whole
        assert await walk(api, alice, limit, q="rep", sort="relevance") == whole
    assert names(await search(api, alice, "rep", limit=100), made)[0] == "finance"


async def test_search_pages_through_another_sort(api: Api):
    alice = await api.account()
    made = await make_data(api, alice)
    expected = ["expenses", "finance", "bike", "dashboard", "lunch", "quarterly"]
    newest_first = await walk(api, alice, 4, q="rep", sort="-created_at")
    assert newest_first == [made[name] for name in expected]
    by_title = await walk(api, alice, 2, q="rep", sort="title")
    expected_titles = ["expenses", "lunch", "quarterly", "bike", "finance", "dashboard"]
    assert by_title == [made[name] for name in expected_titles]


async def test_search_cursor_is_tied_to_its_words(api: Api):
    alice = await api.account()
    await make_data(api, alice)
    cursor = (await search(api, alice, "rep", limit=1)).json()["next_cursor"]
    assert cursor
    assert (await search(api, alice, "rep", cursor=cursor)).status_code == 200
    assert_problem(await search(api, alice, "report", cursor=cursor), 400, "invalid_cursor")
    assert_problem(
        await search(api, alice, "rep", sort="-created_at", cursor=cursor), 400, "invalid_cursor"
    )
    assert_problem(await api.list_tasks(alice, cursor=cursor), 400, "invalid_cursor")


async def test_relevance_without_words_is_422(api: Api):
    alice = await api.account()
    for params in ({}, {"q": "   "}, {"q": "?!"}):
        response = await api.list_tasks(alice, sort="relevance", **params)
        assert_problem(response, 422, "validation_failed")


async def test_query_without_words_lists_everything_newest_first(api: Api):
    alice = await api.account()
    made = await make_data(api, alice)
    everything = [made[name] for name, *_ in DATA][::-1]
    for q in ("", "   ", "?!", "***", "-- ;"):
        response = await search(api, alice, q)
        assert response.status_code == 200, q
        assert [item["id"] for item in response.json()["items"]] == everything, q


async def test_overlong_query_is_422(api: Api):
    alice = await api.account()
    assert_problem(await search(api, alice, "x" * 201), 422, "validation_failed")


async def test_many_words_do_not_break_search(api: Api):
    alice = await api.account()
    await api.create_task(alice, title="a b c d e f g h i j k l m n o p")
    response = await search(api, alice, " ".join("abcdefghijklmnop"))
    assert response.status_code == 200
    assert len(response.json()["items"]) == 1


@pytest.mark.parametrize(
    "q",
    [
        '"',
        "'",
        "*",
        "&",
        ":",
        "(",
        ")",
        "report*",
        '"report',
        "report'",
        "report & draft",
        "report | draft",
        "!report",
        "report:*",
        "title:report",
        "(report",
        "report)",
        "NEAR(report draft)",
        "report OR lunch",
        "AND",
        "NOT report",
        "-report",
        "report^2",
        "\\",
        "%",
        "_",
        "{title}: x",
        "a'b\"c",
        "<->",
        "²",
        "report ½",
        "日本語",
        "\x00",
        "report\u0301",
        "🙂 report",
    ],
)
async def test_special_characters_never_cause_a_server_error(api: Api, q):
    alice = await api.account()
    made = await make_data(api, alice)
    response = await search(api, alice, q)
    assert response.status_code == 200, response.text
    for item in response.json()["items"]:
        assert item["id"] in made.values()


async def test_quotes_and_operators_are_just_separators(api: Api):
    alice = await api.account()
    made = await make_data(api, alice)
    for q in ('"report" & (draft)', "report:* | draft", "report* draft!", "(report, draft)"):
        assert names(await search(api, alice, q), made) == ["expenses"], q


# --- the index follows changes -----------------------------------------------------------------


async def test_renaming_a_task_updates_search(api: Api, client):
    alice = await api.account()
    task = (await api.create_task(alice, title="Old name", description="words"))["id"]
    response = await client.patch(
        f"{API}/tasks/{task}", json={"title": "Fresh name"}, headers=alice.headers
    )
    assert response.status_code == 200
    assert (await search(api, alice, "old")).json()["items"] == []
    assert [item["id"] for item in (await search(api, alice, "fresh")).json()["items"]] == [task]
    assert [item["id"] for item in (await search(api, alice, "words")).json()["items"]] == [task]


async def test_changing_a_description_updates_search(api: Api, client):
    alice = await api.account()
    task = (await api.create_task(alice, title="Note", description="alpha"))["id"]
    response = await client.patch(
        f"{API}/tasks/{task}", json={"description": "omega"}, headers=alice.headers
    )
    assert response.status_code == 200
    assert (await search(api, alice, "alpha")).json()["items"] == []
    assert [item["id"] for item in (await search(api, alice, "omega")).json()["items"]] == [task]


async def test_changing_other_fields_keeps_the_task_searchable(api: Api, client):
    alice = await api.account()
    task = (await api.create_task(alice, title="Keep findable"))["id"]
    response = await client.patch(
        f"{API}/tasks/{task}", json={"status": "done", "tags": ["x"]}, headers=alice.headers
    )
    assert response.status_code == 200
    assert [item["id"] for item in (await search(api, alice, "findable")).json()["items"]] == [task]


async def test_deleted_tasks_disappear_from_search(api: Api, client):
    alice = await api.account()
    gone = (await api.create_task(alice, title="Report to delete"))["id"]
    kept = (await api.create_task(alice, title="Report to keep"))["id"]
    assert (await client.delete(f"{API}/tasks/{gone}", headers=alice.headers)).status_code == 204
    found = [item["id"] for item in (await search(api, alice, "report")).json()["items"]]
    assert found == [kept]
    assert (await search(api, alice, "delete")).json()["items"] == []
