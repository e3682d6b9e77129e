from tests.helpers import API, Api


async def test_health(client):
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_reports_database(client):
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"


async def test_create_then_read_task(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice, title="Buy milk", tags=["Home", " home ", "Errand Run"])
    assert task["tags"] == ["home", "errand-run"]
    response = await client.get(f"{API}/tasks/{task['id']}", headers=alice.headers)
    assert response.status_code == 200
    assert response.json()["title"] == "Buy milk"
