"""Fixtures shared by the CLI tests."""

from __future__ import annotations

import pytest

from nets.results_io import EXPERIMENTS


@pytest.fixture
def no_data(monkeypatch):
    """Fail the test if any experiment starts loading data."""
    import nets.data

    def refuse(*a, **k):
        raise AssertionError("data was loaded")

    # import every experiment first: one imported while nets.data is patched would keep `refuse` for good
    mods = [__import__(f"nets.experiments.{name}", fromlist=["x"]) for name in EXPERIMENTS]
    monkeypatch.setattr(nets.data, "load_splits", refuse)
    for mod in mods:
        if hasattr(mod, "load_splits"):
            monkeypatch.setattr(mod, "load_splits", refuse)
