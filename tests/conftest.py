import os

# The suite runs on three pytest-xdist workers (pyproject's addopts): on a 2-core machine the tests
# spend much of their time waiting for processes and Ray to start.  Each worker and the commands
# it starts use one thread, so the cores are not oversubscribed.
XDIST = bool(os.environ.get("PYTEST_XDIST_WORKER"))
if XDIST:
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1 if XDIST else min(2, os.cpu_count() or 1))

def _cost(item) -> int:
    """A rank of a test's cost: the whole-DAG runs, then the other end-to-end tests, then the rest."""
    if item.get_closest_marker("slow") is None:
        return 2
    return 0 if item.path.name == "test_workflow.py" else 1


def pytest_collection_modifyitems(items):
    """Costliest first, dealt round-robin to the pytest-xdist workers.

    xdist's worksteal hands each worker one contiguous block of the collection and steals from a
    block's end, so the order is arranged block by block: each begins with one of the DAG runs and
    its share of the other slow tests, and what is stolen at the end are the quick ones.  (Sorting
    the slow tests to the front put all of them in the first worker's block: the last DAG run
    started ten minutes in.)"""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    ranked = sorted(items, key=_cost)  # stable: within a rank, the files' own order
    items[:] = [item for w in range(workers) for item in ranked[w::workers]]


@pytest.fixture(scope="session")
def demo_models():
    """One untrained demo codec per variant, entropy tables updated (shared: building is the slow part)."""
    from csalic.codec.model import VARIANTS, build_model

    torch.manual_seed(0)
    models = {}
    for variant in VARIANTS:
        m = build_model("demo", variant).eval()
        m.update(force=True)
        models[variant] = m
    return models


@pytest.fixture(scope="session")
def gpu_cluster(tmp_path_factory):
    """`ray start --head --num-gpus 4`: Ray accepts a declared GPU count on a CPU machine.

    One per pytest worker: the tests that use it run one after another on it, each from its own folder.
    ``--block`` keeps the command running; stopping it stops this cluster alone (``ray stop``
    would stop every Ray instance on the machine, other tests' included)."""
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    log = tmp_path_factory.mktemp("gpu-cluster") / "ray-start.log"
    with open(log, "wb") as fh:
        ray = str(Path(sys.executable).with_name("ray"))
        head = subprocess.Popen([ray, "start", "--head", "--block", "--num-gpus", "4", "--num-cpus", "4",
                                 "--port", "0", "--include-dashboard", "false", "--disable-usage-stats"],
                                stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline, found = time.time() + 120, None
        while found is None and head.poll() is None and time.time() < deadline:
            time.sleep(0.2)
            found = re.search(r"--address='([^']+)'", log.read_text(errors="replace"))
        assert found, log.read_text(errors="replace")[-2000:]
        yield dict(env, RAY_ADDRESS=found.group(1))
    finally:
        head.terminate()
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, 9)
            head.wait()
