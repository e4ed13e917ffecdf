"""tests/exercises: the `target` fixture (--target is registered in tests/conftest.py)."""

import pytest


@pytest.fixture(scope="session")
def target(request) -> str:
    return request.config.getoption("--target")
