import pytest


@pytest.fixture(autouse=True)
def _fresh_readiness():
    """/readyz keeps its last result for a second: no test may see another's."""
    from config.health import readiness_reset

    readiness_reset()
    yield
    readiness_reset()
