"""Integration tests fail if the server logged an unhandled error (a 500),
even when the test's own assertions passed."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(autouse=True)
def no_server_errors(caplog):
    caplog.set_level(logging.INFO, logger="echofs")
    yield
    unhandled = [r for r in caplog.records if r.levelno >= logging.ERROR
                 and r.name.startswith("echofs")]
    assert not unhandled, "server logged errors: " + "; ".join(
        r.getMessage()[:300] for r in unhandled)
