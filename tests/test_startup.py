"""Ctrl-C while ``python -m nets`` is still importing ends in one line and exit status 130
(nets.startup); once a command's ``main`` runs, it is Python's own KeyboardInterrupt, so each command's
interrupted-run message stays."""

from __future__ import annotations

import importlib
import signal
import sys
import textwrap

import pytest

from nets import startup


def _interrupt_inside_an_import(tmp_path, monkeypatch, name: str, body: str = "") -> None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(f'''
        import sys
        from nets.startup import interrupt
        {body}
        interrupt(2, sys._getframe())
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name, None)
    importlib.import_module(name)


def test_an_interrupt_inside_an_import_before_any_main_is_one_line_and_exit_130(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as e:
        _interrupt_inside_an_import(tmp_path, monkeypatch, "gi_startup_probe")
    assert e.value.code == 130 and capsys.readouterr().err == startup.STARTING + "\n"


def test_an_interrupt_inside_an_import_that_a_running_main_makes_is_a_keyboard_interrupt(tmp_path, monkeypatch):
    ns = {"__name__": "__main__", "probe": lambda: _interrupt_inside_an_import(tmp_path, monkeypatch,
                                                                               "gi_startup_probe_late")}
    exec("def main():\n    probe()", ns)  # a command's main, as python -m runs it: in the module __main__
    with pytest.raises(KeyboardInterrupt):
        ns["main"]()


def test_another_librarys_main_on_the_stack_is_not_a_running_command(tmp_path, monkeypatch):
    def main():  # pytest.main, unittest.main, ...: a function named main outside the module __main__
        _interrupt_inside_an_import(tmp_path, monkeypatch, "gi_startup_probe_other")

    with pytest.raises(SystemExit):
        main()


def test_an_interrupt_outside_any_import_is_a_keyboard_interrupt():
    with pytest.raises(KeyboardInterrupt):
        startup.interrupt(signal.SIGINT, sys._getframe())


def test_importing_nets_in_a_program_or_a_test_leaves_pythons_own_handler():
    assert signal.getsignal(signal.SIGINT) is not startup.interrupt


@pytest.mark.parametrize("argv, module", [
    (["python", "-m", "nets", "table1"], "nets"), (["python", "-mnets.data", "info"], "nets.data"),
    (["python", "-u", "-m", "mypkg"], "mypkg"), (["python", "script.py", "-m", "nets"], None),
    (["python", "-c", "import nets"], None), ([], None),
])
def test_the_module_python_m_runs_is_read_from_the_interpreters_arguments(argv, module):
    assert startup.target(argv) == module


def test_only_this_packages_modules_get_the_handlers_and_sigterm_only_python_m_nets(monkeypatch):
    calls = {}
    monkeypatch.setattr(signal, "getsignal", lambda s: signal.default_int_handler if s == signal.SIGINT
                        else signal.SIG_DFL)
    monkeypatch.setattr(signal, "signal", lambda s, h: calls.__setitem__(s, h))
    for module in ("mypkg", None):
        startup.install(module)
    assert calls == {}
    startup.install("nets.data")
    assert calls == {signal.SIGINT: startup.interrupt}
    startup.install("nets")
    assert calls == {signal.SIGINT: startup.interrupt, signal.SIGTERM: startup.interrupt}
