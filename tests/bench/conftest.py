"""Makes the benchmark scripts importable: they live in bench/, which is not a package."""

import sys

from tests.conftest import REPO_ROOT

BENCH_DIR = str(REPO_ROOT / "bench")
if BENCH_DIR not in sys.path:
    sys.path.insert(0, BENCH_DIR)
