"""Evaluation reports: a candidate model against a baseline on the same labelled data, as HTML and PDF."""
