"""Tests of forgeline.store."""
