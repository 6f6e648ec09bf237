"""EndpointStoreContract: endpoint configurations and their status every MetadataStore must keep.

MetadataStoreContract inherits it, so a backend that subclasses that suite runs these tests too.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from forgeline.errors import EndpointError, EndpointNotFoundError
from forgeline.store.metadata.endpoint_store import EndpointStatus
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import ModelPackageDraft
from forgeline.workflow.models import ModelApprovalStatus

CONFIG = {"variants": [{"name": "current", "models": ["features@3", "payments@approved"], "weight": 90.0},
                       {"name": "canary", "models": ["payments@8"], "weight": 10.0}],
          "max_batch_size": 32, "max_batch_wait_us": 500, "capture": 0.05, "note": "ünïcode ✓"}


class EndpointStoreContract:
    """Shared tests of the endpoint part of a MetadataStore (the subclass provides ``store``)."""

    def test_a_created_endpoint_keeps_its_configuration(self, store: MetadataStore) -> None:
        record = store.create_endpoint("risk-de", CONFIG)

        assert (record.name, record.config, record.revision) == ("risk-de", CONFIG, 1)
        assert record.status == EndpointStatus.CREATING and record.deployed == {}
        assert record.created_at.utcoffset() == timedelta(0)
        assert store.get_endpoint("risk-de") == record

    def test_a_taken_name_is_refused(self, store: MetadataStore) -> None:
        store.create_endpoint("risk-de", CONFIG)
        with pytest.raises(EndpointError, match="already exists"):
            store.create_endpoint("risk-de", {"variants": []})
        assert store.get_endpoint("risk-de").config == CONFIG

    def test_updates_count_the_revision_up(self, store: MetadataStore) -> None:
        store.create_endpoint("risk-de", CONFIG)
        changed = {**CONFIG, "capture": 0.5}
        record = store.update_endpoint("risk-de", changed)
        assert (record.revision, record.status, record.config) == (2, EndpointStatus.UPDATING, changed)

    def test_status_is_recorded_only_for_the_current_revision(self, store: MetadataStore) -> None:
        store.create_endpoint("risk-de", CONFIG)
        deployed = {"current": ["features/3", "payments/7"]}
        assert store.set_endpoint_status("risk-de", 1, EndpointStatus.IN_SERVICE, deployed=deployed)
        record = store.get_endpoint("risk-de")
        assert (record.status, record.deployed, record.status_message) == (EndpointStatus.IN_SERVICE, deployed, None)

        store.update_endpoint("risk-de", CONFIG)
        assert not store.set_endpoint_status("risk-de", 1, EndpointStatus.FAILED, message="late news")
        assert store.get_endpoint("risk-de").status == EndpointStatus.UPDATING
        assert store.set_endpoint_status("risk-de", 2, EndpointStatus.FAILED, message="no model")
        record = store.get_endpoint("risk-de")
        assert (record.status, record.status_message, record.deployed) == (EndpointStatus.FAILED, "no model", deployed)

    def test_list_and_delete(self, store: MetadataStore) -> None:
        for name in ("b", "a"):
            store.create_endpoint(name, CONFIG)
        assert [record.name for record in store.list_endpoints()] == ["a", "b"]
        store.delete_endpoint("a")
        assert [record.name for record in store.list_endpoints()] == ["b"]
        with pytest.raises(EndpointNotFoundError, match="no endpoint 'a' \\(endpoints: b\\)"):
            store.get_endpoint("a")
        with pytest.raises(EndpointNotFoundError):
            store.delete_endpoint("a")
        assert not store.set_endpoint_status("a", 1, EndpointStatus.IN_SERVICE)

    def test_a_package_keeps_its_micro_batching_flag(self, store: MetadataStore) -> None:
        for accepts in (True, False):
            draft = ModelPackageDraft(group="hgb", approval_status=ModelApprovalStatus.APPROVED, model_data="/m",
                                      accepts_batches=accepts)
            version = store.create_model_package(draft, actor="ci").version
            assert store.get_model_package("hgb", version).accepts_batches is accepts
