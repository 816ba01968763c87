"""Fixtures for the proposer tests (helpers live in proposer_helpers.py)."""

from proposer_helpers import run_method

__all__ = ["run_method"]
