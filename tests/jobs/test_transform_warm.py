"""Warm transform workers: forked by a shared server that has imported the model's framework, ended with their job.

Each test gets a server of its own (a folder of its own on ``sys.path`` makes its address unique), so whether a
worker starts warm depends only on what the test did before.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from forgeline.inference.loader import ModelSource, load_model
from forgeline.jobs import transform_warm
from forgeline.jobs.entrypoints import batch_transform
from forgeline.jobs.transform import transform_folder
from forgeline.jobs.transform_chunks import TransformSettings, WorkerLostError
from jobs.test_transform import lines, write_csv

# The prediction says whether numpy was imported before this module (in the server, from an earlier job's report)
INFERENCE = """
    import json, os, sys, time
    PRELOADED = "numpy" in sys.modules
    import numpy as np

    def model_fn(model_dir):
        with open(os.path.join(model_dir, "model.json")) as handle:
            model = json.load(handle)
        if model.get("pids"):
            os.makedirs(model["pids"], exist_ok=True)
            open(os.path.join(model["pids"], str(os.getpid())), "w").close()
        return model

    def predict_fn(data, model):
        time.sleep(model.get("seconds_per_batch", 0))
        return np.column_stack([data[:, 0].astype(int), np.full(len(data), int(PRELOADED))])
"""


@pytest.fixture
def own_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A server address of this test's own: one more folder on sys.path (the address hashes it)."""
    folder = tmp_path / "own-path"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return transform_warm.server_address()


def model(tmp_path: Path, **options: object) -> functools.partial[object]:
    code, folder = tmp_path / "code", tmp_path / "model"
    code.mkdir(exist_ok=True)
    folder.mkdir(exist_ok=True)
    (code / "inference.py").write_text(textwrap.dedent(INFERENCE))
    (folder / "model.json").write_text(json.dumps(options))
    return functools.partial(load_model, ModelSource(str(folder), str(code), "inference.py"),
                             cache_dir=tmp_path / "cache")


def warm(seconds: float = 30.0) -> TransformSettings:
    return TransformSettings(accept="text/csv", max_payload_mb=0.0005, workers=2, warm_seconds=seconds)


def server_pids(address: Path) -> list[int]:
    """The processes serving ``address`` (the server and the hosts it forked carry its command line)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and str(address).encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                found.append(int(entry))
        except OSError:
            continue
    return found


def test_a_later_jobs_workers_start_with_the_framework_the_first_ones_imported(tmp_path, own_server):
    write_csv(tmp_path / "in" / "data.csv", range(2000))

    transform_folder(tmp_path / "in", tmp_path / "out", model(tmp_path), warm())
    assert lines(tmp_path / "out" / "data.csv.out") == [f"{i},0" for i in range(2000)]  # cold: numpy imported here
    assert own_server.exists() and server_pids(own_server)

    transform_folder(tmp_path / "in", tmp_path / "out", model(tmp_path), warm())
    assert lines(tmp_path / "out" / "data.csv.out") == [f"{i},1" for i in range(2000)]  # forked with numpy


def test_without_warm_seconds_no_server_starts(tmp_path, own_server):
    write_csv(tmp_path / "in" / "data.csv", range(500))

    for _ in range(2):
        transform_folder(tmp_path / "in", tmp_path / "out", model(tmp_path), warm(seconds=0))
        assert lines(tmp_path / "out" / "data.csv.out") == [f"{i},0" for i in range(500)]
    assert not own_server.exists() and not server_pids(own_server)


def test_the_server_exits_after_its_idle_time_and_removes_its_socket(tmp_path, own_server, wait_until):
    write_csv(tmp_path / "in" / "data.csv", range(100))

    transform_folder(tmp_path / "in", tmp_path / "out", model(tmp_path), warm(seconds=0.5))

    assert lines(tmp_path / "out" / "data.csv.out") == [f"{i},0" for i in range(100)]
    wait_until(lambda: not server_pids(own_server) and not own_server.exists(), timeout=60,
               what="the idle server to exit and remove its socket")


KILLED_JOB = """
import sys
from pathlib import Path
sys.path[:] = {path!r}
from jobs.test_transform_warm import model, warm
from forgeline.jobs.transform import transform_folder
transform_folder(Path({source!r}), Path({target!r}), model(Path({tmp!r}), pids={pids!r}, seconds_per_batch=0.5),
                 warm())
"""


def test_killing_a_job_ends_its_host_and_workers(tmp_path, own_server, wait_until):
    pids = tmp_path / "pids"
    write_csv(tmp_path / "in" / "data.csv", range(20_000))
    script = KILLED_JOB.format(path=sys.path, source=str(tmp_path / "in"), target=str(tmp_path / "out"),
                               tmp=str(tmp_path), pids=str(pids))
    job = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path)
    try:
        workers = wait_until(lambda: pids.is_dir() and len(list(pids.iterdir())) == 2 and
                             [int(p.name) for p in pids.iterdir()], timeout=120, what="two warm workers")
        served = set(server_pids(own_server))
        assert set(workers) <= served  # forked under the server, not under the job
        job.send_signal(signal.SIGKILL)
        job.wait(timeout=60)
        wait_until(lambda: not set(workers) & set(server_pids(own_server)), timeout=30,
                   what="the killed job's workers to end")
        assert own_server.exists()  # the server itself serves on
    finally:
        job.kill()
        job.wait()


def test_a_bad_warm_seconds_setting_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(batch_transform.WARM_SECONDS_VARIABLE, "soon")
    write_csv(tmp_path / "in" / "data.csv", range(3))

    code = batch_transform.main(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                                 "--model", str(tmp_path / "model")])

    error = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in error
    assert error.startswith("FORGELINE_TRANSFORM_WARM_SECONDS='soon' is not a number of seconds")


def test_a_factory_from_the_jobs_own_modules_loads_on_warm_workers(tmp_path, own_server):
    # importable only through the job's sys.path, which the server never had: the host takes it on first
    folder = Path(sys.path[0])
    model(tmp_path)
    (folder / "own_factory.py").write_text(textwrap.dedent(f"""
        from forgeline.inference.loader import ModelSource, load_model

        def make():
            return load_model(ModelSource({str(tmp_path / "model")!r}, {str(tmp_path / "code")!r}, "inference.py"),
                              cache_dir={str(tmp_path / "cache")!r})
        """))
    import own_factory  # type: ignore[import-not-found]

    write_csv(tmp_path / "in" / "data.csv", range(300))
    transform_folder(tmp_path / "in", tmp_path / "out", own_factory.make, warm())
    assert lines(tmp_path / "out" / "data.csv.out") == [f"{i},0" for i in range(300)]


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def test_a_host_that_dies_fails_its_job_and_takes_its_workers_along(tmp_path, own_server, wait_until):
    pids = tmp_path / "pids"
    write_csv(tmp_path / "in" / "data.csv", range(20_000))
    failed: list[BaseException] = []

    def run() -> None:
        try:
            transform_folder(tmp_path / "in", tmp_path / "out",
                             model(tmp_path, pids=str(pids), seconds_per_batch=0.5), warm())
        except BaseException as exc:  # noqa: BLE001 - what the test looks at
            failed.append(exc)

    job = threading.Thread(target=run)
    job.start()
    try:
        workers = wait_until(lambda: pids.is_dir() and len(list(pids.iterdir())) == 2 and
                             [int(p.name) for p in pids.iterdir()], timeout=120, what="two warm workers")
        os.kill(_parent_of(workers[0]), signal.SIGKILL)  # the host
        wait_until(lambda: failed, timeout=60, what="the job to fail")
    finally:
        job.join(timeout=120)
    assert isinstance(failed[0], WorkerLostError), failed
    wait_until(lambda: not set(workers) & set(server_pids(own_server)), timeout=30, what="the workers to end")
