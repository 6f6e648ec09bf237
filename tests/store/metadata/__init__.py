"""Tests of forgeline.store.metadata."""
