"""Traffic end to end: variant splits, swaps under load, approvals followed, killed workers, scaling, batching."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from forgeline.registry import Registry
from forgeline.serving import Endpoint
from serving.server_process import in_thread, open_loop, send_concurrently

ROW = [[1, 2]]


def test_variants_split_traffic_by_weight_and_a_header_pins_one(models: Any, serve: Any) -> None:
    models("m", bias=0.0)
    models("m", bias=100.0)
    Endpoint.create("risk", variants=["current=m@1:70", "canary=m@2:30"])
    server = serve()
    server.wait_serving("risk")

    answers = send_concurrently(f"{server.url}/endpoints/risk/invocations", [ROW] * 10_000, concurrency=48)
    pinned = [server.invoke("risk", ROW, headers={"X-Forgeline-Variant": "canary"}) for _ in range(20)]
    unknown = server.invoke("risk", ROW, headers={"X-Forgeline-Variant": "nope"})

    assert all(a.status == 200 for a in answers)
    shares = Counter(a.headers["x-forgeline-variant"] for a in answers)
    assert abs(shares["current"] / 10_000 - 0.70) <= 0.03 and abs(shares["canary"] / 10_000 - 0.30) <= 0.03
    for answer in answers:
        expected = {"current": ("m@1", 3.0), "canary": ("m@2", 103.0)}[answer.headers["x-forgeline-variant"]]
        assert (answer.headers["x-forgeline-model"], answer.json()[0][0]) == expected
    assert {(p.status_code, p.headers["x-forgeline-variant"]) for p in pinned} == {(200, "canary")}
    assert unknown.status_code == 400 and "current, canary" in unknown.json()["error"]


def test_ten_swaps_under_300_rps_lose_no_request(models: Any, serve: Any) -> None:
    models("m", bias=0.0)
    models("m", bias=100.0)
    endpoint = Endpoint.create("risk", ["m@1"])
    server = serve()
    server.wait_serving("risk")
    done = threading.Event()
    load = in_thread(open_loop, f"{server.url}/endpoints/risk/invocations", ROW, 300, stop=done.is_set,
                     deadline_seconds=90)

    try:
        for swap in range(10):
            record = endpoint.update([f"m@{2 if swap % 2 == 0 else 1}"])
            server.wait_serving("risk", record.revision)
    finally:
        done.set()
    result = load.result(timeout=120)

    assert len(result.statuses) > 300
    assert Counter(result.statuses) == {200: len(result.statuses)}, Counter(result.models)
    assert set(result.models) == {"m@1", "m@2"}


def test_ten_approval_transitions_under_300_rps_lose_no_request(models: Any, serve: Any) -> None:
    models("m", bias=0.0)
    models("m", bias=100.0, status="PendingManualApproval")
    Endpoint.create("risk", ["m@approved"])
    server = serve()
    server.wait_serving("risk", model="m@1")
    registry = Registry()
    done = threading.Event()
    load = in_thread(open_loop, f"{server.url}/endpoints/risk/invocations", ROW, 300, stop=done.is_set,
                     deadline_seconds=90)

    try:
        for transition in range(10):
            if transition % 2 == 0:
                registry.approve("m", 2)
                server.wait_serving("risk", model="m@2")
            else:
                registry.reject("m", 2)
                server.wait_serving("risk", model="m@1")
    finally:
        done.set()
    result = load.result(timeout=120)

    assert len(result.statuses) > 300
    assert Counter(result.statuses) == {200: len(result.statuses)}, Counter(result.models)
    assert set(result.models) == {"m@1", "m@2"}


def test_an_endpoint_follows_approvals_and_falls_back_when_the_new_version_is_rejected(models: Any,
                                                                                      serve: Any) -> None:
    models("m", bias=0.0)
    models("m", bias=100.0, status="PendingManualApproval")
    Endpoint.create("risk", ["m@approved"])
    server = serve()
    server.wait_serving("risk", model="m@1")
    registry = Registry()

    registry.approve("m", 2)
    server.wait_serving("risk", model="m@2")
    after_approval = server.invoke("risk", ROW)
    registry.reject("m", 2)
    server.wait_serving("risk", model="m@1")
    after_rejection = server.invoke("risk", ROW)

    assert (after_approval.headers["x-forgeline-model"], after_approval.json()[0][0]) == ("m@2", 103.0)
    assert (after_rejection.headers["x-forgeline-model"], after_rejection.json()[0][0]) == ("m@1", 3.0)
    assert Endpoint("risk").describe().deployed == {"AllTraffic": ["m@1"]}


def test_an_endpoint_on_latest_swaps_to_each_newly_registered_version(models: Any, serve: Any) -> None:
    models("m", bias=0.0)
    Endpoint.create("risk", ["m@latest"])
    server = serve()
    server.wait_serving("risk", model="m@1")

    models("m", bias=100.0, status="PendingManualApproval")
    server.wait_serving("risk", model="m@2")

    assert server.invoke("risk", ROW).json()[0][0] == 103.0


def test_a_killed_worker_is_replaced_and_its_requests_retried(models: Any, serve: Any, wait_until: Any,
                                                             forgeline_home: Path) -> None:
    models("m", sleep=0.005)
    Endpoint.create("risk", ["m@1"])
    server = serve()
    server.wait_serving("risk")
    [worker] = server.workers()
    load = in_thread(open_loop, f"{server.url}/endpoints/risk/invocations", ROW, 300, count=1500)
    log = forgeline_home / "endpoints" / "risk" / "endpoint.log"
    wait_until(lambda: "forgeline_endpoint_requests_total{endpoint=\"risk\"" in _metrics(server), timeout=20,
               what="the first answered requests")
    os.kill(worker.pid, signal.SIGKILL)
    result = load.result(timeout=120)

    assert result.success >= 0.999, Counter(result.statuses)
    assert f"worker {worker.pid} died" in log.read_text()
    replacements = [process.pid for process in server.workers()]
    assert replacements and worker.pid not in replacements  # (the queue may also have brought a second one)


def test_workers_scale_up_under_load_and_idle_ones_retire(models: Any, serve: Any, wait_until: Any,
                                                         forgeline_home: Path) -> None:
    models("slow", sleep=0.02, accepts_batches=False)
    Endpoint.create("risk", ["slow@1"], max_batch_size=1)
    server = serve("--workers-min", "1", "--workers-max", "2", "--worker-idle-seconds", "1")
    server.wait_serving("risk")
    done = threading.Event()
    load = in_thread(open_loop, f"{server.url}/endpoints/risk/invocations", ROW, 80, stop=done.is_set,
                     deadline_seconds=60)

    try:
        wait_until(lambda: server.listing()["risk"]["variants"][0]["workers"] == 2, timeout=60,
                   what="a second worker")
    finally:
        done.set()
    result = load.result(timeout=120)
    wait_until(lambda: server.listing()["risk"]["variants"][0]["workers"] == 1, timeout=30,
               what="the idle worker to retire")

    assert result.success == 1.0
    log = (forgeline_home / "endpoints" / "risk" / "endpoint.log").read_text()
    assert "adding a worker" in log and "ms after requests waiting asked for it" in log and "retired" in log


def test_concurrent_requests_share_predict_calls_and_each_gets_its_own_answer(models: Any, serve: Any) -> None:
    models("batched", sleep=0.01, scale=2.0, bias=1.0)
    Endpoint.create("risk", ["batched@1"], max_batch_size=64, max_batch_wait_us=2000)
    server = serve()
    server.wait_serving("risk")

    answers = send_concurrently(f"{server.url}/endpoints/risk/invocations", [[[n, 0]] for n in range(400)],
                                concurrency=64)

    rows_per_call = []
    for n, answer in enumerate(answers):
        assert answer.status == 200, answer.body
        [[value, rows]] = answer.json()
        assert value == n * 2.0 + 1.0
        rows_per_call.append(rows)
    assert max(rows_per_call) > 1  # several requests' rows went through one predict_fn call
    metrics = _metrics(server)
    batches = float(metrics.split('forgeline_endpoint_batch_size_count{endpoint="risk",variant="AllTraffic"} ')[1]
                    .split()[0])
    assert batches < 400  # fewer frames to the workers than requests
    assert 'forgeline_endpoint_batch_size_bucket{endpoint="risk",le="64.0",variant="AllTraffic"} ' in metrics


def test_a_restarted_server_serves_every_endpoint_as_before(models: Any, serve: Any) -> None:
    models("m", bias=0.0)
    models("m", bias=100.0)
    Endpoint.create("one", ["m@1"])
    Endpoint.create("two", variants=["a=m@1:50", "b=m@2:50"])
    first = serve()
    before = {name: first.wait_serving(name) for name in ("one", "two")}
    workers = first.workers()
    first.stop()
    assert first.process.returncode in (0, -signal.SIGTERM)  # graceful: the signal is re-raised after shutdown
    assert not [w for w in workers if w.is_running() and w.status() != "zombie"]  # its workers ended with it

    second = serve()
    after = {name: second.wait_serving(name) for name in ("one", "two")}

    assert _variants(after) == _variants(before)
    assert second.invoke("one", ROW).json()[0][0] == 3.0
    pinned = second.invoke("two", ROW, headers={"X-Forgeline-Variant": "b"})
    assert (pinned.headers["x-forgeline-model"], pinned.json()[0][0]) == ("m@2", 103.0)


def _variants(listing: dict[str, Any]) -> dict[str, list[tuple[str, float, str]]]:
    return {name: [(v["name"], v["weight"], v["model"]) for v in row["variants"]] for name, row in listing.items()}


def _metrics(server: Any) -> str:
    import httpx

    return httpx.get(f"{server.url}/metrics", headers=server.headers()).text


def test_endpoint_invoke_from_python(models: Any, serve: Any, monkeypatch: Any) -> None:
    models("m")
    endpoint = Endpoint.create("risk", ["m@1"])
    server = serve()
    server.wait_serving("risk")
    monkeypatch.setenv("FORGELINE_SERVE_URL", server.url)

    answer = Endpoint("risk").invoke(json.dumps(ROW), "application/json", "application/json")

    assert (answer.json(), answer.variant, answer.model) == ([[3.0, 1]], "AllTraffic", "m@1")
    assert endpoint.describe().status.value == "InService"


def test_an_update_whose_models_cannot_load_leaves_the_old_ones_serving(models: Any, serve: Any,
                                                                       wait_until: Any) -> None:
    models("m")
    models("m", code="def model_fn(model_dir):\n    raise OSError('weights missing')\n")
    endpoint = Endpoint.create("risk", ["m@1"])
    server = serve()
    server.wait_serving("risk")

    record = endpoint.update(["m@2"])
    failed = wait_until(lambda: (d := endpoint.describe()).status.value == "Failed" and d, timeout=60,
                        what="the update to fail")

    assert failed.revision == record.revision
    assert "weights missing" in (failed.status_message or "")
    assert "still serving revision 1: AllTraffic = m@1" in (failed.status_message or "")
    answer = server.invoke("risk", ROW)
    assert (answer.status_code, answer.headers["x-forgeline-model"]) == (200, "m@1")


def test_a_model_that_hangs_times_out_with_504_and_its_worker_is_replaced(models: Any, serve: Any, wait_until: Any,
                                                                          forgeline_home: Path) -> None:
    models("m")
    models("hang", sleep=3600)
    Endpoint.create("risk", ["m@1"])
    Endpoint.create("hang", ["hang@1"])
    server = serve("--invocation-timeout", "1")
    server.wait_serving("risk")
    server.wait_serving("hang")
    before = {w.pid for w in server.workers()}

    answer = server.invoke("hang", ROW)

    assert answer.status_code == 504 and "no answer within 1 s" in answer.json()["error"]
    assert answer.json()["endpoint"] == "hang"
    assert server.invoke("risk", ROW).status_code == 200  # the other endpoint never noticed
    log = (forgeline_home / "endpoints" / "hang" / "endpoint.log").read_text()
    hung = int(log.split("gave no answer")[0].rsplit("worker ", 1)[1])
    assert hung in before
    wait_until(lambda: hung not in {w.pid for w in server.workers()} and len(server.workers()) == 2, timeout=30,
               what="the hung worker replaced")
