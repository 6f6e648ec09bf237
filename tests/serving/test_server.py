"""forgeline serve end to end: endpoints, pipelines, bad input, metrics, logs, auth and capture over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from forgeline.serving import Endpoint
from serving.server_process import FEATURES, LINEAR

ROWS = [[1, 2], [3, 4]]


def test_two_endpoints_answer_side_by_side_with_variant_and_model_headers(models: Any, serve: Any,
                                                                          forgeline_home: Path) -> None:
    models("de", scale=1.0, bias=0.5)
    models("fr", scale=10.0, bias=0.0)
    Endpoint.create("risk-de", ["de@1"])
    Endpoint.create("risk-fr", ["fr@approved"])
    server = serve()
    server.wait_serving("risk-de")
    server.wait_serving("risk-fr")

    de = server.invoke("risk-de", ROWS)
    fr = server.invoke("risk-fr", ROWS)

    assert de.status_code == fr.status_code == 200
    assert [row[0] for row in de.json()] == [3.5, 7.5]
    assert [row[0] for row in fr.json()] == [30.0, 70.0]
    assert (de.headers["x-forgeline-variant"], de.headers["x-forgeline-model"]) == ("AllTraffic", "de@1")
    assert fr.headers["x-forgeline-model"] == "fr@1"
    assert de.headers["content-type"] == "application/json"
    assert httpx.get(f"{server.url}/ping").status_code == 200


def test_a_two_stage_pipeline_passes_each_stage_output_on_in_the_declared_type(models: Any, serve: Any) -> None:
    models("features", code=FEATURES, accepts_batches=False, content_types=["application/json"])
    models("payments", scale=2.0, bias=1.0, content_types=["text/csv"], response_types=["application/json",
                                                                                          "text/csv"])
    Endpoint.create("risk", ["features@1", "payments@1"])
    server = serve()
    server.wait_serving("risk")

    answer = server.invoke("risk", {"amount": 10, "items": [{"sku": 1}, {"sku": 2}]})
    as_csv = server.invoke("risk", {"amount": 1}, headers={"accept": "text/csv"})

    # features → "10.0,2.0" as CSV (what payments reads) → payments: (10 + 2) * 2 + 1
    assert answer.status_code == 200, answer.text
    assert answer.json()[0][0] == 25.0
    assert answer.headers["x-forgeline-model"] == "features@1,payments@1"
    assert as_csv.status_code == 200 and as_csv.headers["content-type"] == "text/csv"
    assert as_csv.text.split(",")[0] == "3.0"


def test_every_bad_input_gets_its_status_and_a_json_error_naming_where(models: Any, serve: Any,
                                                                       forgeline_home: Path) -> None:
    models("features", code=FEATURES, accepts_batches=False, content_types=["application/json"])
    models("payments", content_types=["text/csv"])
    models("broken", fail=True)
    Endpoint.create("risk", ["features@1", "payments@1"])
    Endpoint.create("broken", ["broken@1"])
    server = serve()
    server.wait_serving("risk")
    server.wait_serving("broken")

    malformed = server.invoke("risk", b'{"amount": 1', )
    unsupported = server.invoke("risk", b"amount=1", content_type="text/plain")
    too_big = server.invoke("risk", b"[" + b"1," * (3 * 1024 * 1024) + b"1]")
    unknown = server.invoke("nope", ROWS)
    raising = server.invoke("broken", ROWS)
    second_stage = server.invoke("risk", {"amount": 1}, headers={"accept": "image/png"})

    assert malformed.status_code == 400 and malformed.json()["stage"] == 0
    assert "cannot be read" in malformed.json()["error"]
    assert unsupported.status_code == 415 and "application/json" in unsupported.json()["error"]
    assert too_big.status_code == 413
    assert unknown.status_code == 404 and "risk" in unknown.json()["error"]
    assert raising.status_code == 500
    error = raising.json()
    assert (error["endpoint"], error["variant"], error["stage"], error["model"]) == ("broken", "AllTraffic", 0,
                                                                                    "broken@1")
    assert "RuntimeError: the model exploded" in error["error"] and "Traceback" not in raising.text
    assert second_stage.status_code == 406 and second_stage.json()["stage"] == 1
    assert second_stage.json()["model"] == "payments@1"
    # the server goes on serving, and the traceback is in the endpoint's log
    assert server.invoke("risk", {"amount": 1}).status_code == 200
    log = (forgeline_home / "endpoints" / "broken" / "endpoint.log").read_text()
    assert "Traceback" in log and "the model exploded" in log


def test_one_endpoint_failing_or_crashing_does_not_fail_another(models: Any, serve: Any) -> None:
    models("good")
    models("crash", code=LINEAR.replace("def predict_fn(rows, model):",
                                        "def predict_fn(rows, model):\n    os._exit(3)"))
    Endpoint.create("good", ["good@1"])
    Endpoint.create("crash", ["crash@1"])
    server = serve()
    server.wait_serving("good")
    server.wait_serving("crash")

    crashed = server.invoke("crash", ROWS)
    answers = [server.invoke("good", ROWS).status_code for _ in range(20)]

    assert crashed.status_code == 500 and "worker died" in crashed.json()["error"]
    assert answers == [200] * 20


def test_metrics_count_requests_errors_latency_batches_and_workers(models: Any, serve: Any) -> None:
    models("m")
    Endpoint.create("risk", ["m@1"])
    server = serve()
    server.wait_serving("risk")
    for _ in range(3):
        server.invoke("risk", ROWS)
    server.invoke("risk", b"{", content_type="application/json")

    text = httpx.get(f"{server.url}/metrics").text

    assert 'forgeline_endpoint_requests_total{endpoint="risk",status="200",variant="AllTraffic"} 3.0' in text
    assert 'forgeline_endpoint_errors_total{endpoint="risk",status="400",variant="AllTraffic"} 1.0' in text
    assert 'forgeline_endpoint_latency_seconds_count{endpoint="risk",variant="AllTraffic"} 4.0' in text
    assert 'forgeline_endpoint_batch_size_count{endpoint="risk",variant="AllTraffic"} 4.0' in text
    assert 'forgeline_endpoint_workers{endpoint="risk",variant="AllTraffic"} 1.0' in text
    assert 'forgeline_endpoint_queue_depth{endpoint="risk",variant="AllTraffic"} 0.0' in text


def test_the_endpoint_listing_gives_the_last_minutes_rate_errors_and_latency_by_variant(models: Any,
                                                                                        serve: Any) -> None:
    models("m", sleep=0.02)
    Endpoint.create("risk", ["m@1"])
    server = serve()
    before = server.wait_serving("risk")
    for _ in range(5):
        assert server.invoke("risk", ROWS).status_code == 200
    assert server.invoke("risk", b"{", content_type="application/json").status_code == 400

    row = server.listing()["risk"]

    assert before["traffic"]["requests"] == 0 and before["traffic"]["p50_ms"] is None
    assert (row["traffic"]["requests"], row["traffic"]["errors"]) == (6, 1)
    assert row["traffic"]["requests_per_second"] > 0 and row["traffic"]["window_seconds"] == 60
    assert 18 <= row["traffic"]["p50_ms"] <= row["traffic"]["p99_ms"]  # the model sleeps 20 ms
    variant = row["variants"][0]
    assert variant["name"] == "AllTraffic" and variant["traffic"]["requests"] == 6


def test_a_token_file_makes_every_route_but_ping_want_a_bearer_token(models: Any, serve: Any,
                                                                    tmp_path: Path) -> None:
    models("m")
    Endpoint.create("risk", ["m@1"])
    tokens = tmp_path / "tokens"
    tokens.write_text("# invokers\nfirst-token\n\nsecond-token\n")
    server = serve("--token-file", str(tokens), token="second-token")
    server.wait_serving("risk")

    anonymous = httpx.post(f"{server.url}/endpoints/risk/invocations", content=json.dumps(ROWS))
    wrong = server.invoke("risk", ROWS, headers={"Authorization": "Bearer nope"})

    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    assert httpx.get(f"{server.url}/ping").status_code == 200
    assert server.invoke("risk", ROWS).status_code == 200
    assert server.invoke("risk", ROWS, headers={"Authorization": "Bearer first-token"}).status_code == 200


def test_captured_pairs_land_as_json_lines_under_the_artifact_store(models: Any, serve: Any, wait_until: Any,
                                                                   forgeline_home: Path) -> None:
    models("m")
    Endpoint.create("risk", ["m@1"], capture=1.0)
    server = serve()
    server.wait_serving("risk")
    for n in range(5):
        assert server.invoke("risk", [[n, 0]]).status_code == 200

    folder = forgeline_home / "artifacts" / "data-capture" / "risk"

    def records() -> list[dict[str, Any]]:
        return [json.loads(line) for path in sorted(folder.rglob("*.jsonl")) for line in path.read_text().splitlines()]

    found = wait_until(lambda: len(records()) == 5 and records(), timeout=20, what="5 captured records")
    first = sorted(found, key=lambda r: r["time"])[0]
    assert (first["endpoint"], first["variant"], first["model"], first["status"]) == ("risk", "AllTraffic",
                                                                                     "m@1", 200)
    assert json.loads(first["request"]["data"]) == [[0, 0]] and first["latency_ms"] > 0
    assert json.loads(first["response"]["data"]) == [[0.0, 1]]


def test_a_flooded_endpoint_does_not_fail_another(models: Any, serve: Any, wait_until: Any) -> None:
    import threading

    from serving.server_process import in_thread, open_loop

    models("slow", sleep=0.05, accepts_batches=False)
    models("fast")
    Endpoint.create("flooded", ["slow@1"], max_batch_size=1)
    Endpoint.create("calm", ["fast@1"])
    server = serve("--workers-max", "1")
    server.wait_serving("flooded")
    server.wait_serving("calm")
    done = threading.Event()
    flood = in_thread(open_loop, f"{server.url}/endpoints/flooded/invocations", ROWS, 200, stop=done.is_set,
                      deadline_seconds=30, connections=64)

    try:
        wait_until(lambda: server.listing()["flooded"]["variants"][0]["queue"] > 30, timeout=30,
                   what="the flooded endpoint's queue to grow")
        calm = [server.invoke("calm", ROWS).status_code for _ in range(30)]
    finally:
        done.set()
    flood.result(timeout=120)

    assert calm == [200] * 30
