"""Fixtures of the serve tests: one tiny model per application, trained once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("fastapi", reason='rnnkit serve needs its extra: pip install "rnnkit[serve]"')


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """application -> a saved tiny model of it (a few seconds in all)."""
    from tiny_models import train_all

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on a busy 2-core machine spin and crawl
    try:
        return train_all(tmp_path_factory.mktemp("serve-models"))
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def served(model_dirs: dict[str, Path]) -> list:
    from rnnkit.serve import load_models

    return load_models(list(model_dirs.values()), threads=1)
