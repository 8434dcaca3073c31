"""Makes an interpreter look like the bare GPU machine ``scripts/gpu_check.sh`` is for.

Python imports ``sitecustomize`` at start-up from ``sys.path``; with this folder on
``PYTHONPATH``, the top-level packages named in ``GI_HIDE_MODULES`` (comma-separated)
raise ``ModuleNotFoundError`` on import, as if they were not installed, in this
interpreter and in every subprocess that inherits the environment.
``tests/test_gpu_check.py`` hides the optional extras the lent GPU machine lacks, so
the script's CPU path in CI fails where the real run would.
"""

from __future__ import annotations

import os
import sys
from importlib.abc import MetaPathFinder

HIDDEN = frozenset(filter(None, os.environ.get("GI_HIDE_MODULES", "").split(",")))


class HideModules(MetaPathFinder):
    """First on ``sys.meta_path``: refuses the hidden packages before any finder looks for them."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by GI_HIDE_MODULES)", name=name)
        return None


if HIDDEN:
    sys.meta_path.insert(0, HideModules())
