"""/api/v1/endpoints: each endpoint's configuration with its live traffic, asked of the running forgeline serve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api.conftest import StartServer
from forgeline.serving import Endpoint
from forgeline.store.metadata.sql_store import SqlMetadataStore
from serving.server_process import ServingServer, register, settings_for

ROWS = [[1, 2], [3, 4]]


def serve_risk(home: Path, folder: Path) -> ServingServer:
    """Endpoint ``risk`` (variants blue = m@1, weight 75, and green = m@2, weight 25; the models sleep 10 ms)
    served by a `forgeline serve` that wants a bearer token, once it is in service."""
    store = SqlMetadataStore(settings_for(home).database_url)
    register(store, folder / "models", "m", sleep=0.01)
    register(store, folder / "models", "m", scale=2.0, sleep=0.01)
    store.close()
    Endpoint.create("risk", variants=["blue=m@1:75", "green=m@2:25"])
    (folder / "tokens").write_text("serving-secret\n")
    serving = ServingServer.start(home, "--token-file", str(folder / "tokens"), token="serving-secret")
    try:
        serving.wait_serving("risk")
    except BaseException:
        serving.stop()
        raise
    return serving


def serving_env(serving: ServingServer) -> dict[str, str]:
    """What `forgeline server` needs to ask ``serving`` for live figures."""
    return {"FORGELINE_SERVING_URL": serving.url, "FORGELINE_SERVING_TOKEN": serving.token or ""}


def test_endpoints_carry_live_rate_errors_and_latency_from_forgeline_serve(start_server: StartServer,
                                                                           forgeline_home: Path,
                                                                           tmp_path: Path) -> None:
    serving = serve_risk(forgeline_home, tmp_path)
    try:
        server = start_server(env=serving_env(serving))
        blind = start_server()  # no FORGELINE_SERVING_URL
        with server.client("viewer") as client:
            idle = client.get("/endpoints").json()
            for _ in range(6):
                assert serving.invoke("risk", ROWS, headers={"X-Forgeline-Variant": "blue"}).status_code == 200
            assert serving.invoke("risk", ROWS, headers={"X-Forgeline-Variant": "green"}).status_code == 200
            assert serving.invoke("risk", b"{", headers={"X-Forgeline-Variant": "blue"}).status_code == 400
            busy = client.get("/endpoints/risk").json()
        with blind.client("viewer") as client:
            unasked = client.get("/endpoints/risk").json()
    finally:
        serving.stop()
    with server.client("viewer") as client:
        gone = client.get("/endpoints").json()[0]["live"]

    assert [e["name"] for e in idle] == ["risk"] and idle[0]["config"]["variants"][0]["name"] == "blue"
    assert idle[0]["live"]["status"] == "InService" and idle[0]["live"]["traffic"]["requests"] == 0
    live: dict[str, Any] = busy["live"]
    assert (live["traffic"]["requests"], live["traffic"]["errors"]) == (8, 1)
    assert live["traffic"]["requests_per_second"] > 0
    assert 9 <= live["traffic"]["p50_ms"] <= live["traffic"]["p99_ms"]  # the models sleep 10 ms
    variants = {v["name"]: v for v in live["variants"]}
    assert (variants["blue"]["weight"], variants["green"]["weight"]) == (75, 25)
    assert (variants["blue"]["traffic"]["requests"], variants["blue"]["traffic"]["errors"]) == (7, 1)
    assert (variants["green"]["traffic"]["requests"], variants["green"]["traffic"]["errors"]) == (1, 0)
    assert "FORGELINE_SERVING_URL" in unasked["live"]["error"] and unasked["name"] == "risk"
    assert "cannot reach forgeline serve" in gone["error"]
