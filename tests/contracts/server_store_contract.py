"""ServerStoreContract: API tokens, duty leases and read cursors every MetadataStore must keep.

MetadataStoreContract inherits it, so a backend that subclasses that suite runs these tests too.
"""

from __future__ import annotations

import time

import pytest

from forgeline.errors import StaleLeaseError, TokenError
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.tokens_store import Role


class ServerStoreContract:
    """Shared tests of the server part of a MetadataStore (the subclass provides ``store``)."""

    def test_a_token_is_found_by_its_hash_until_revoked(self, store: MetadataStore) -> None:
        created = store.create_token("ci", Role.OPERATOR, "a" * 64, created_by="alice")
        assert (created.name, created.role, created.created_by, created.revoked_at) == ("ci", Role.OPERATOR,
                                                                                        "alice", None)
        assert store.find_token("a" * 64) == created
        assert store.find_token("b" * 64) is None
        revoked = store.revoke_token("ci")
        assert revoked.revoked_at is not None
        assert store.find_token("a" * 64) is None
        assert store.list_tokens() == [revoked]

    def test_a_taken_token_name_is_refused_even_when_revoked(self, store: MetadataStore) -> None:
        store.create_token("ci", Role.VIEWER, "a" * 64)
        store.revoke_token("ci")
        with pytest.raises(TokenError, match="already exists"):
            store.create_token("ci", Role.ADMIN, "c" * 64)

    def test_revoking_an_unknown_token_names_the_known_ones(self, store: MetadataStore) -> None:
        store.create_token("alice", Role.APPROVER, "a" * 64)
        with pytest.raises(TokenError, match="no token named 'bob' .*alice"):
            store.revoke_token("bob")

    def test_use_is_recorded(self, store: MetadataStore) -> None:
        store.create_token("ci", Role.VIEWER, "a" * 64)
        store.mark_token_used("ci")
        assert store.list_tokens()[0].last_used_at is not None

    def test_a_lease_has_one_holder_until_it_expires(self, store: MetadataStore) -> None:
        assert store.acquire_lease("scheduler", "server-a", 60)
        assert not store.acquire_lease("scheduler", "server-b", 60)
        assert store.acquire_lease("scheduler", "server-a", 60)  # the holder renews
        assert store.acquire_lease("triggers", "server-b", 60)  # another duty is another lease

    def test_an_expired_lease_is_taken_over(self, store: MetadataStore) -> None:
        assert store.acquire_lease("scheduler", "server-a", 0.05)
        time.sleep(0.1)  # the lease's own expiry, not a race: nothing else runs
        assert store.acquire_lease("scheduler", "server-b", 60)
        assert not store.acquire_lease("scheduler", "server-a", 60)

    def test_a_released_lease_is_free_and_only_its_holder_releases_it(self, store: MetadataStore) -> None:
        assert store.acquire_lease("scheduler", "server-a", 60)
        store.release_lease("scheduler", "server-b")
        assert not store.acquire_lease("scheduler", "server-b", 60)
        store.release_lease("scheduler", "server-a")
        assert store.acquire_lease("scheduler", "server-b", 60)

    def test_each_new_holder_gets_the_next_epoch_and_a_renewal_keeps_it(self, store: MetadataStore) -> None:
        assert store.hold_lease("scheduler", "server-a", 0.05) == 1
        assert store.hold_lease("scheduler", "server-a", 0.05) == 1  # renewed
        time.sleep(0.1)  # the lease's own expiry, not a race: nothing else runs
        assert store.hold_lease("scheduler", "server-b", 60) == 2
        assert store.hold_lease("scheduler", "server-a", 60) is None
        store.release_lease("scheduler", "server-b")
        assert store.hold_lease("scheduler", "server-a", 60) == 3  # a released lease's epoch is never reused

    def test_writes_under_a_fence_are_refused_once_another_holds_the_lease(self, store: MetadataStore) -> None:
        epoch = store.hold_lease("triggers", "server-a", 0.05)
        assert epoch is not None
        with store.lease_fence("triggers", epoch):
            store.set_cursor("written-by-a", 1)  # still the holder: allowed
            assert store.acquire_lease("triggers", "server-a", 0.05)  # a renewal under the fence keeps the epoch
            time.sleep(0.1)  # server-a stalls past its lease
            assert store.hold_lease("other-duty", "server-b", 60) == 1  # (another lease is no concern)
            assert store.get_cursor("written-by-a") == 1  # reads go on
        assert store.hold_lease("triggers", "server-b", 60) == epoch + 1
        with store.lease_fence("triggers", epoch):
            with pytest.raises(StaleLeaseError, match="the triggers lease is held by server-b"):
                store.set_cursor("written-by-a", 2)
            with pytest.raises(StaleLeaseError):
                store.acquire_lease("triggers", "server-a", 60)  # nor does it take the lease back under it
            assert store.get_cursor("written-by-a") == 1
        store.set_cursor("written-by-a", 3)  # outside the fence nothing is checked

    def test_cursors_remember_positions(self, store: MetadataStore) -> None:
        assert store.get_cursor("alarms") is None
        store.set_cursor("alarms", 7)
        store.set_cursor("alarms", 42)
        store.set_cursor("other", 1)
        assert (store.get_cursor("alarms"), store.get_cursor("other")) == (42, 1)

    def test_executions_are_paged_in_a_stable_order_after_a_cursor(self, store: MetadataStore) -> None:
        version = store.save_pipeline_version("train", {"steps": []})
        for number in range(7):
            store.create_execution(execution_id=f"exec-{number:04d}", pipeline_name="train",
                                   pipeline_version=version.version, parameters={}, work_dir="/w", steps=[])
        whole = [record.id for record in store.list_executions(limit=100)]
        pages: list[str] = []
        before = None
        while True:
            page = store.list_executions(limit=3, before=before)
            if not page:
                break
            pages += [record.id for record in page]
            before = (page[-1].created_at, page[-1].id)
        assert pages == whole and len(whole) == 7
