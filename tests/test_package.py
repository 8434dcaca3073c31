"""The package re-exports its public names (captum-style: private modules, public package)."""

import subprocess
import sys

import nets


def test_every_public_name_resolves_to_its_module_object():
    from nets import metrics, models

    assert nets.logit_invariance is metrics.logit_invariance
    assert nets.MLP is models.MLP
    for name in nets.__all__:
        assert getattr(nets, name) is not None


def test_unknown_attribute_is_an_attribute_error():
    try:
        nets.not_a_name  # noqa: B018
    except AttributeError as err:
        assert "not_a_name" in str(err)
    else:
        raise AssertionError("expected AttributeError")


def test_importing_nets_does_not_import_torch_heavy_modules():
    code = "import sys, nets; print('nets.metrics' in sys.modules, 'nets.train' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_every_re_exported_name_is_the_function_even_after_its_submodules_are_imported():
    """Importing ``nets.X`` binds the attribute ``X`` of the package to the submodule, so no module
    may be named like a re-exported name (``nets/fetch.py`` once shadowed ``nets.fetch``)."""
    import importlib
    import pkgutil
    import types

    import nets

    for info in pkgutil.walk_packages(nets.__path__, "nets."):
        if not info.name.rsplit(".", 1)[-1].startswith("_"):
            importlib.import_module(info.name)
    modules = [name for name in nets.__all__ if isinstance(getattr(nets, name), types.ModuleType)]
    assert modules == []
    from nets import audit, fetch, logit_invariance, saliency_invariance

    assert callable(audit) and audit.__module__ == "nets.auditing"
    assert callable(logit_invariance) and callable(saliency_invariance) and callable(fetch)
