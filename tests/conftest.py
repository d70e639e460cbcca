"""Shared fixtures. With DIALER_REQUIRE_PEERS=1 (set by .ci/run) a missing peer fails instead of skipping."""

from __future__ import annotations

import os
import shutil
import socket

import pytest

REQUIRE_PEERS = os.environ.get("DIALER_REQUIRE_PEERS") == "1"
POSTGRES_DSN = os.environ.get("DIALER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (apt-get install it; see README)"
        if REQUIRE_PEERS:
            pytest.fail(message)
        pytest.skip(message)
    return path


def _postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    if not _postgres_reachable():
        message = "PostgreSQL is not reachable at 127.0.0.1:5432"
        if REQUIRE_PEERS:
            pytest.fail(message)
        pytest.skip(message)
    return POSTGRES_DSN
