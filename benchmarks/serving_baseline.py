"""The hand-written baseline of the serving benchmark: a minimal FastAPI ``async def`` app around the same predictor.

    BENCH_SERVING_MODEL=<model folder> BENCH_SERVING_CODE=<code folder> \\
        uvicorn serving_baseline:app --loop uvloop --http httptools --no-access-log --workers 2
"""

from __future__ import annotations

import os

from fastapi import FastAPI, Request, Response

from forgeline.inference.loader import ModelSource, load_model

predictor = load_model(ModelSource(os.environ["BENCH_SERVING_MODEL"], os.environ["BENCH_SERVING_CODE"],
                                   "inference.py"))
app = FastAPI()


@app.get("/ping")
async def ping() -> Response:
    """Liveness."""
    return Response(status_code=200)


@app.post("/invocations")
async def invocations(request: Request) -> Response:
    """Decode, predict and encode in the event loop: no thread pool hop, no validation model."""
    body = await request.body()
    output = predictor.predict(body, request.headers.get("content-type", "application/json"), "application/json")
    return Response(output, media_type="application/json")
