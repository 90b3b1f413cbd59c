import os

# The suite runs on three pytest-xdist workers (pyproject's addopts): on a 2-core machine the tests
# spend much of their time waiting for processes and Ray to start.  Each worker and the commands
# it starts use one thread, so the cores are not oversubscribed.
XDIST = bool(os.environ.get("PYTEST_XDIST_WORKER"))
if XDIST:
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1 if XDIST else min(2, os.cpu_count() or 1))

def pytest_collection_modifyitems(items):
    """Start the slow end-to-end tests first, so that no long test is left running alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def demo_models():
    """One untrained demo codec per variant, entropy tables updated (shared: building is the slow part)."""
    from csalic.model import VARIANTS, build_model

    torch.manual_seed(0)
    models = {}
    for variant in VARIANTS:
        m = build_model("demo", variant).eval()
        m.update(force=True)
        models[variant] = m
    return models
