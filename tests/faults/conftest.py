"""The fault tests use the functional layer's fixtures; their matrix lives in tests/support/fault_matrix.py."""

from __future__ import annotations

from tests.functional.conftest import angel, cloud, harness, moto  # noqa: F401  (the same fixtures as functional)
