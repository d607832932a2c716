import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _benchmark_root() -> Path | None:
    for candidate in (os.environ.get("CSUNET_DATA"), REPO.parent / "shared" / "data" / "micronet_benchmark"):
        if candidate and Path(candidate, "Super1").is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def benchmark_root() -> Path:
    """NASA's benchmark folder; tests that need it skip, saying why, when ../shared is absent."""
    root = _benchmark_root()
    if root is None:
        pytest.skip(
            "NASA benchmark data absent: neither $CSUNET_DATA nor ../shared/data/micronet_benchmark exists"
        )
    return root
