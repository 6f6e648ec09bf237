"""The deployment job: ``python deploy.py --endpoint E --model M [--model M2] --timeout T --properties F ...``.

Run by DeployStep as a processing job, so a deployment retries and logs like any step and waits without
holding up the orchestrator.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from forgeline.engine.runtime import Runtime
from forgeline.errors import ForgelineError
from forgeline.serving.deployment import DeploymentRequest, deploy


def main(argv: list[str] | None = None) -> int:
    """Deploy; exit 1 with one line saying what failed and what the endpoint serves now."""
    parser = argparse.ArgumentParser(prog="deploy")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--no-wait", action="store_true")
    parser.add_argument("--sample-body")
    parser.add_argument("--content-type", default="application/json")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--url")
    parser.add_argument("--properties", required=True)
    args = parser.parse_args(argv)
    request = DeploymentRequest(args.endpoint, args.model, wait=not args.no_wait, sample_body=args.sample_body,
                                content_type=args.content_type, timeout=args.timeout)
    try:
        done = deploy(request, Runtime.from_env().store, url=args.url)
    except ForgelineError as exc:
        print(f"the deployment failed: {exc}", file=sys.stderr)
        return 1
    Path(args.properties).write_text(json.dumps({"endpoint_name": done.endpoint, "revision": done.revision,
                                                 "models": done.models}), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
