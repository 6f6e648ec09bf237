"""A worker process of one endpoint variant: load its inference pipeline once, then answer batches.

Started by the server as ``python -m forgeline.serving.worker <fd>`` with one end of a socket pair; its stdout
and stderr go to the endpoint's log. It exits when the server closes the socket (or dies).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from forgeline.inference.loader import ModelSource, load_model
from forgeline.serving.ipc import recv_frame, send_frame
from forgeline.serving.stages import InferencePipeline, Stage
from forgeline.store.artifacts import ArtifactStore


def load_pipeline(spec: dict[str, Any]) -> InferencePipeline:
    """Load every stage through the one model loader (the same cache folder as Registry.load)."""
    artifacts = ArtifactStore(spec["artifact_root"], options_by_protocol=spec.get("storage_options"))
    cache_dir = Path(spec["home"]) / "model-cache"
    stages = []
    for stage in spec["stages"]:
        source = ModelSource(stage["model_data"], stage["code_uri"], stage["entry_point"],
                             tuple(stage["response_types"]))
        predictor = load_model(source, artifacts=artifacts, cache_dir=cache_dir)
        stages.append(Stage(stage["label"], predictor, bool(stage["accepts_batches"]),
                            tuple(stage["content_types"]), tuple(stage["response_types"])))
    return InferencePipeline(stages)


def serve(sock: socket.socket) -> int:
    """Receive the pipeline spec, load it, report ready (or why not), then answer batches until closed."""
    spec = recv_frame(sock)
    if spec is None:
        return 0
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO,
        format=f"%(asctime)s worker {os.getpid()} [{spec['endpoint']}/{spec['variant']}] %(levelname)s %(message)s",
    )
    log = logging.getLogger("forgeline.serving")
    try:
        pipeline = load_pipeline(spec)
    except Exception as exc:  # noqa: BLE001 - any failure to load is reported to the server as one line
        log.exception("loading the models failed")
        send_frame(sock, ("failed", f"{type(exc).__name__}: {exc}"))
        return 1
    send_frame(sock, ("ready", os.getpid()))
    while True:
        message = recv_frame(sock)
        if message is None:
            return 0
        batch_id, requests = message
        send_frame(sock, (batch_id, pipeline.run(requests)))


def main(argv: list[str] | None = None) -> int:
    """Entry point: the inherited socket's file descriptor is the only argument."""
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the server, which then closes its workers
    sock = socket.socket(fileno=int(args[0]))
    try:
        return serve(sock)
    except (BrokenPipeError, ConnectionResetError):
        return 0
    finally:
        sock.close()


if __name__ == "__main__":
    sys.exit(main())
