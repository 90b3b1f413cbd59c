import os

import pytest
import torch

# Two cores: keep torch from oversubscribing them when tests spawn subprocesses.
torch.set_num_threads(min(2, os.cpu_count() or 1))


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
