"""Endpoint: real-time endpoints from Python — create, update, describe, delete, and invoke over HTTP.

Configurations live in the metadata store; a running ``forgeline serve`` picks every change up by itself.
``invoke`` calls that server (``FORGELINE_SERVE_URL``, default ``http://127.0.0.1:8080``).
"""

from __future__ import annotations

import builtins
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

from forgeline.config import Settings
from forgeline.engine.runtime import Runtime
from forgeline.errors import EndpointError
from forgeline.serving.config import EndpointConfig, VariantConfig, check_endpoint_name
from forgeline.serving.resolution import resolve_config
from forgeline.store.metadata.endpoint_store import EndpointRecord
from forgeline.store.metadata.protocol import MetadataStore

SERVE_URL_ENV = "FORGELINE_SERVE_URL"
TOKEN_ENV = "FORGELINE_TOKEN"
DEFAULT_SERVE_URL = "http://127.0.0.1:8080"


@dataclass(frozen=True)
class InvocationResult:
    """An endpoint's answer: the body, its media type, and which variant and models produced it."""

    body: bytes
    content_type: str
    variant: str
    model: str

    def json(self) -> object:
        """The body parsed as JSON."""
        return json.loads(self.body)


class Endpoint:
    """A named real-time endpoint in the metadata store."""

    def __init__(self, name: str, *, settings: Settings | None = None, store: MetadataStore | None = None,
                 url: str | None = None, token: str | None = None) -> None:
        self.name = check_endpoint_name(name)
        self.settings = settings  # None: the FORGELINE_* variables name the store
        self._given_store = store
        self.url = (url or os.environ.get(SERVE_URL_ENV) or DEFAULT_SERVE_URL).rstrip("/")
        self.token = token if token is not None else os.environ.get(TOKEN_ENV)

    @cached_property
    def store(self) -> MetadataStore:
        """The metadata store holding the configuration (given, or built at this edge of the Python API)."""
        return self._given_store or Runtime.at_edge(self.settings).store

    @classmethod
    def create(cls, name: str, models: Sequence[str] | None = None, *,
               variants: Iterable[str | VariantConfig] | None = None, max_batch_size: int | None = None,
               max_batch_wait_us: int | None = None, capture: float | None = None,
               settings: Settings | None = None, store: MetadataStore | None = None) -> Endpoint:
        """Create an endpoint serving ``models`` (stages in order) or weighted ``variants``; checked first."""
        endpoint = cls(name, settings=settings, store=store)
        config = EndpointConfig.build(models=models, variants=variants, max_batch_size=max_batch_size,
                                      max_batch_wait_us=max_batch_wait_us, capture=capture)
        resolve_config(config, endpoint.store)
        endpoint.store.create_endpoint(endpoint.name, config.to_json())
        return endpoint

    def update(self, models: Sequence[str] | None = None, *, variants: Iterable[str | VariantConfig] | None = None,
               max_batch_size: int | None = None, max_batch_wait_us: int | None = None,
               capture: float | None = None) -> EndpointRecord:
        """Change models, variants or settings (what is not given stays); the server swaps without downtime."""
        record = self.store.get_endpoint(self.name)
        config = EndpointConfig.from_json(record.config).updated(
            models=models, variants=variants, max_batch_size=max_batch_size, max_batch_wait_us=max_batch_wait_us,
            capture=capture)
        resolve_config(config, self.store)
        return self.store.update_endpoint(self.name, config.to_json())

    def describe(self) -> EndpointRecord:
        """The stored configuration, revision, status and what the server serves."""
        return self.store.get_endpoint(self.name)

    @property
    def config(self) -> EndpointConfig:
        """The endpoint's configuration."""
        return EndpointConfig.from_json(self.describe().config)

    def delete(self) -> None:
        """Delete the endpoint; a running server stops its workers."""
        self.store.delete_endpoint(self.name)

    @staticmethod
    def list(settings: Settings | None = None, store: MetadataStore | None = None) -> builtins.list[EndpointRecord]:
        """Every endpoint, by name."""
        chosen = store or Runtime.at_edge(settings).store
        return chosen.list_endpoints()

    def invoke(self, body: bytes | str, content_type: str = "application/json", accept: str | None = None, *,
               variant: str | None = None, timeout: float = 60.0) -> InvocationResult:
        """POST ``body`` to the endpoint on the running server; EndpointError carries the server's error."""
        data = body.encode() if isinstance(body, str) else bytes(body)
        headers = {"Content-Type": content_type}
        if accept:
            headers["Accept"] = accept
        if variant:
            headers["X-Forgeline-Variant"] = variant
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(f"{self.url}/endpoints/{self.name}/invocations", data=data, method="POST",
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return InvocationResult(response.read(), response.headers.get("Content-Type", ""),
                                        response.headers.get("X-Forgeline-Variant", ""),
                                        response.headers.get("X-Forgeline-Model", ""))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            try:
                detail = json.loads(detail).get("error", detail)
            except (ValueError, AttributeError):
                pass
            raise EndpointError(f"endpoint {self.name} answered {exc.code}: {detail}") from None
        except urllib.error.URLError as exc:
            raise EndpointError(f"cannot reach the server at {self.url} ({exc.reason}): start it with "
                                f"`forgeline serve` or set {SERVE_URL_ENV}") from None
