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
    def main():
        _interrupt_inside_an_import(tmp_path, monkeypatch, "gi_startup_probe_late")

    with pytest.raises(KeyboardInterrupt):
        main()


def test_an_interrupt_outside_any_import_is_a_keyboard_interrupt():
    with pytest.raises(KeyboardInterrupt):
        startup.interrupt(signal.SIGINT, sys._getframe())


def test_importing_nets_in_a_program_or_a_test_leaves_pythons_own_handler():
    assert signal.getsignal(signal.SIGINT) is not startup.interrupt
