"""A results file that parses but lacks what its reader needs (hand-edited, merged, partly written)
is named in one line, by the report and by its figures, and left where it is."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nets.report import write_report
from nets.results_io import ResultsFileError, reading, unreadable
from nets.results_io.seal import SEAL_FIELD

REPO = Path(__file__).resolve().parents[1]
QUICK = REPO / "results" / "quick"


@pytest.fixture
def folder(quick_table1_drift: Path) -> Path:
    """The committed quick profile's Table 1 and drift results, alone in a folder."""
    return quick_table1_drift


def _edit(path: Path, edit) -> bytes:
    """Edit a results file by hand, its seal dropped: a file written before seals, which is read as it is
    (an edit to a sealed file is refused before any reader sees it: tests/test_results_seal.py)."""
    data = json.loads(path.read_text())
    data["meta"].pop(SEAL_FIELD, None)
    edit(data)
    path.write_text(json.dumps(data))
    return path.read_bytes()


def _drop_da_seed(d):
    del d["groups"]["r4"]["methods"]["DA"]["runs"][0]["seed"]  # which seed a run is: the pairing needs it


def test_a_key_error_while_reading_becomes_one_line_naming_the_file():
    with pytest.raises(ResultsFileError) as e:
        with reading("r/table1.json"):
            {}["SI"]
    assert str(e.value).startswith("r/table1.json could not be read for the report (KeyError: 'SI'): if it was hand-edited")
    assert "\n" not in str(e.value)
    assert isinstance(e.value.__cause__, KeyError)


@pytest.mark.parametrize("error", [IndexError("list index out of range"), TypeError("'NoneType' object is not "
                                                                                     "subscriptable"),
                                   ValueError("could not convert string to float: 'x'"), ZeroDivisionError()])
def test_every_read_error_is_named_with_its_type(error):
    with pytest.raises(ResultsFileError, match=type(error).__name__):
        with reading("r/drift.json", "its figures"):
            raise error


def test_a_damaged_file_already_named_passes_unchanged():
    named = ResultsFileError("r/x.json is not a valid results file (the file is empty)")
    with pytest.raises(ResultsFileError) as e:
        with reading("r/other.json"):
            raise named
    assert e.value is named


def test_errors_that_are_not_about_reading_pass_unchanged():
    with pytest.raises(RuntimeError):
        with reading("r/table1.json"):
            raise RuntimeError("a bug, not a file")


def test_a_multi_line_message_is_cut_to_its_first_line():
    assert "\n" not in str(unreadable("r.json", ValueError("first\nsecond")))


def test_the_report_names_the_file_that_lacks_a_key_not_the_others(folder):
    before = _edit(folder / "table1.json", _drop_da_seed)
    with pytest.raises(ResultsFileError) as e:
        write_report(folder)
    assert str(e.value).startswith(f"{folder / 'table1.json'} could not be read for the report (KeyError: 'seed')")
    assert (folder / "table1.json").read_bytes() == before  # left as it is, for its owner
    assert not (folder / "REPORT.md").exists()


def test_the_same_folder_renders_once_the_file_is_whole_again(folder):
    whole = (folder / "table1.json").read_bytes()
    _edit(folder / "table1.json", _drop_da_seed)
    with pytest.raises(ResultsFileError):
        write_report(folder)
    (folder / "table1.json").write_bytes(whole)
    assert write_report(folder).read_text().startswith("# Reproduction report")


def test_the_message_says_a_whole_file_that_cannot_be_read_is_a_bug_and_how_to_see_its_traceback():
    message = str(unreadable("r/t.json", KeyError("x")))
    assert "if it is as a run wrote it, it is a bug of ours: GI_DEBUG=1 shows the traceback" in message


def test_with_gi_debug_the_original_error_comes_through(folder, monkeypatch):
    monkeypatch.setenv("GI_DEBUG", "1")
    with pytest.raises(KeyError, match="SI"):
        with reading("r/table1.json"):
            {}["SI"]
    _edit(folder / "table1.json", _drop_da_seed)
    with pytest.raises(KeyError, match="seed"):
        write_report(folder)


def test_the_report_command_says_it_in_one_line_without_a_traceback(folder):
    _edit(folder / "drift.json", lambda d: d["groups"]["t3"]["DA"].pop("DI"))
    run = subprocess.run([sys.executable, "-m", "nets", "report", "--profile", "quick", "--results",
                          str(folder.parent)], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"{folder / 'drift.json'} could not be read for its figures (KeyError: 'DI')" in lines[0]


@pytest.mark.parametrize("edit,why", [
    (lambda d: d["groups"].pop("t3"), "no results for t3, which group_provenance says were computed"),
    (lambda d: d["groups"].update(q7=d["groups"]["r4"]), "results for q7, which no run computed"),
], ids=["a group deleted", "a group pasted in"])
def test_a_group_deleted_or_pasted_in_by_hand_is_named_not_silently_left_out_of_the_verdicts(folder, edit, why):
    _edit(folder / "table1.json", edit)
    with pytest.raises(ResultsFileError, match=f"table1.json is not a valid results file \\(its groups and "
                                               f"group_provenance disagree: {why}\\)"):
        write_report(folder)


def test_a_sweep_record_that_cannot_be_read_is_named(folder):
    (folder / "reproduce.json").write_text(json.dumps({"meta": {"wall_time_s": "12 min"}}))
    with pytest.raises(ResultsFileError, match="reproduce.json could not be read for the report"):
        write_report(folder)


@pytest.mark.parametrize("record", [{"meta": None}, {"experiment_wall_time_s": {}}], ids=["meta null", "no meta"])
def test_a_sweep_record_without_its_meta_record_is_refused(folder, record):
    # without it (and so without its seal) the report would leave out the sweep's command and wall time
    (folder / "reproduce.json").write_text(json.dumps(record))
    with pytest.raises(ResultsFileError, match="reproduce.json is not a valid results file \\(no meta record\\)"):
        write_report(folder)


@pytest.mark.parametrize("command", ["per-class", "between", "si-settings", "intervals"])
def test_the_evaluation_only_commands_name_a_table1_json_without_irs_nu_in_one_line(command, tmp_path):
    out = tmp_path / "quick"
    out.mkdir()
    for name in ("table1.json", "spectral.json"):
        shutil.copy(QUICK / name, out / name)
    _edit(out / "table1.json", lambda d: d["groups"]["r4"]["methods"]["IR"].pop("nu"))
    run = subprocess.run([sys.executable, "-m", "nets", command, "--profile", "quick", "--results", str(tmp_path),
                          "--threads", "1"], cwd=REPO, capture_output=True, text=True)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert f"{out / 'table1.json'} could not be read for `python -m nets {command}` (KeyError: 'nu')" in run.stderr


@pytest.mark.parametrize("name", ["cnn.json", "cnn_scale.json"])
def test_the_cnn_section_refuses_a_cnn_file_without_its_meta_record(tmp_path, name):
    from nets.cnn_report import cnn_section

    for f in ("cnn.json", "cnn_scale.json"):
        shutil.copy(REPO / "results" / "cnn-e20" / "paper" / f, tmp_path / f)
    data = json.loads((tmp_path / name).read_text())
    del data["meta"]  # the seal goes with it: only the missing record tells
    (tmp_path / name).write_text(json.dumps(data))
    with pytest.raises(ResultsFileError, match=f"{name} is not a valid results file \\(no meta record\\)"):
        cnn_section(tmp_path, mlp_results={})
