"""A results file carries the SHA-256 of its content (``meta.content_sha256``), written with it, and a file
changed since is refused in one line naming it, instead of being read as its run wrote it: the edits that
used to change a verdict silently (a group or model row deleted, a per-seed list shortened, a value nulled,
a group pasted in) are each named; reformatting is not an edit; a file without a seal is read as it is."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest

from nets.__main__ import main
from nets.results_io import ResultsFileError, add_seals, dumps, load_results, read_json, read_results, write_json
from nets.results_io.seal import SEAL_FIELD, content_digest, seal_damage, sealed

REPO = Path(__file__).resolve().parents[1]


def _doc() -> dict:
    return {"meta": {"experiment": "table1", "seeds": [0, 1]},
            "groups": {"r4": {"methods": {"DA": {"runs": [{"seed": 0, "LI": 0.25}, {"seed": 1, "LI": 1e-12}]}}}},
            "group_provenance": {"r4": {"command": "x"}}}


@pytest.fixture
def quick(quick_table1_drift: Path) -> Path:
    """A copy of the committed quick profile's Table 1 and drift results (sealed as committed)."""
    return quick_table1_drift


def _rewrite(path: Path, edit) -> None:
    """Edit a file's JSON by hand, as a person would: the seal stays as it was."""
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2))


def test_write_json_seals_a_results_dict_with_the_digest_of_its_content(tmp_path):
    write_json(tmp_path / "t.json", _doc())
    data = read_json(tmp_path / "t.json")
    assert data["meta"][SEAL_FIELD] == content_digest(_doc())
    assert list(data["meta"])[-1] == SEAL_FIELD and {k: v for k, v in data["meta"].items() if k != SEAL_FIELD} == \
        _doc()["meta"]


def test_sealing_leaves_the_document_it_is_given_as_it_was():
    doc = _doc()
    assert SEAL_FIELD in sealed(doc)["meta"] and doc == _doc()


def test_the_digest_is_the_sha256_of_the_canonical_form_keys_sorted_whole_numbers_without_a_fraction():
    doc = {"meta": {"experiment": "x", SEAL_FIELD: "old"}, "b": [3.0, 0.25, True, None, "é"], "a": {"z": 1, "y": -0.0}}
    spelled = '{"a":{"y":0,"z":1},"b":[3,0.25,true,null,"\\u00e9"],"meta":{"experiment":"x"}}'
    assert content_digest(doc) == hashlib.sha256(spelled.encode("ascii")).hexdigest()


def test_a_document_without_a_meta_record_is_written_without_a_seal(tmp_path):
    write_json(tmp_path / "m.json", {"entries": [1, 2]})
    assert read_json(tmp_path / "m.json") == {"entries": [1, 2]}


def test_reformatting_a_sealed_file_is_not_an_edit(tmp_path):
    write_json(tmp_path / "t.json", _doc())
    data = json.loads((tmp_path / "t.json").read_text())
    data = {k: data[k] for k in reversed(list(data))}  # keys reordered, re-indented
    (tmp_path / "t.json").write_text(json.dumps(data, indent=4, sort_keys=True))
    assert read_json(tmp_path / "t.json")["groups"] == _doc()["groups"]


def test_a_reformatting_that_writes_whole_floats_as_integers_is_not_an_edit(tmp_path):
    # jq and JavaScript's JSON.stringify write 3.0 as 3: the same JSON number
    path = tmp_path / "t.json"
    write_json(path, {**_doc(), "nu_grid": [10.0, 30.0, 0.5]})

    def whole(node):
        if isinstance(node, float) and node.is_integer():
            return int(node)
        return {k: whole(v) for k, v in node.items()} if isinstance(node, dict) else \
            [whole(v) for v in node] if isinstance(node, list) else node

    path.write_text(json.dumps(whole(json.loads(path.read_text())), indent=2))
    assert "[\n    10,\n    30,\n    0.5\n  ]" in path.read_text() and read_json(path)["nu_grid"] == [10, 30, 0.5]


def test_a_number_made_a_boolean_is_an_edit():
    doc = sealed({**_doc(), "flags": [1, 0]})
    doc["flags"] = [True, False]  # equal in Python, not in JSON
    assert seal_damage(doc) is not None


def test_writing_a_sealed_dict_again_replaces_its_seal(tmp_path):
    write_json(tmp_path / "t.json", _doc())
    data = read_json(tmp_path / "t.json")
    data["groups"]["t3"] = data["groups"]["r4"]  # as a --groups run's merge does, through write_json
    data["group_provenance"]["t3"] = {"command": "y"}
    write_json(tmp_path / "t.json", data)
    assert read_json(tmp_path / "t.json")["meta"][SEAL_FIELD] == content_digest(data)


@pytest.mark.parametrize("edit", [
    lambda d: d["groups"]["r4"]["methods"]["DA"]["runs"].pop(),  # a per-seed list shortened
    lambda d: d["groups"]["r4"]["methods"]["DA"]["runs"][0].update(LI=None),  # a value nulled
    lambda d: d["groups"]["r4"]["methods"]["DA"]["runs"][1].update(LI=1.0000000000001e-12),  # a last digit
    lambda d: d["groups"]["r4"]["methods"].pop("DA"),  # a model row deleted
    lambda d: d["meta"].update(seeds=[0]),  # the seeds it says it used
    lambda d: d["groups"]["r4"]["methods"]["DA"]["runs"][0].update(LI="0.25"),  # a number made a string
], ids=["shortened", "nulled", "last-digit", "row-deleted", "meta", "to-string"])
def test_any_changed_value_is_refused_in_one_line_naming_the_file(tmp_path, edit):
    path = tmp_path / "t.json"
    write_json(path, _doc())
    _rewrite(path, edit)
    before = path.read_bytes()
    with pytest.raises(ResultsFileError) as e:
        read_json(path)
    assert str(e.value).startswith(f"{path} is not as its run wrote it (its content no longer matches meta.{SEAL_FIELD}")
    assert "git checkout" in str(e.value) and "--overwrite" in str(e.value) and "\n" not in str(e.value)
    assert path.read_bytes() == before  # left as it is


def test_a_deleted_group_is_named_as_such_not_only_as_a_broken_seal(tmp_path):
    path = tmp_path / "table1.json"
    write_json(path, _doc())
    _rewrite(path, lambda d: d["groups"].pop("r4"))
    with pytest.raises(ResultsFileError, match="no results for r4, which group_provenance says were computed"):
        read_json(path)


def test_a_group_deleted_with_its_provenance_is_still_refused(tmp_path):
    path = tmp_path / "table1.json"
    write_json(path, _doc())
    _rewrite(path, lambda d: (d["groups"].pop("r4"), d["group_provenance"].pop("r4")))
    with pytest.raises(ResultsFileError, match="no longer matches"):
        read_json(path)


def test_a_seal_that_is_not_a_digest_is_refused(tmp_path):
    path = tmp_path / "t.json"
    write_json(path, _doc())
    _rewrite(path, lambda d: d["meta"].update({SEAL_FIELD: None}))
    with pytest.raises(ResultsFileError, match="is not a hex digest"):
        read_json(path)


def test_a_file_without_a_seal_is_read_as_it_is(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(_doc()))  # written before seals, or by hand
    assert seal_damage(_doc()) is None and read_json(path) == _doc()


@pytest.mark.parametrize("started, refused", [("2026-12-07T08:00:00+0000", True), ("2026-12-01T08:00:00+0000", False)],
                         ids=["run after seals existed", "run before"])
def test_a_file_whose_run_wrote_a_seal_and_that_has_none_had_it_removed(tmp_path, started, refused):
    """Deleting the seal let any edit through: a run started since seals existed wrote one."""
    path = tmp_path / "t.json"
    write_json(path, {**_doc(), "meta": {**_doc()["meta"], "started_at": started}})
    _rewrite(path, lambda d: (d["meta"].pop(SEAL_FIELD), d["groups"]["r4"]["methods"]["DA"]["runs"][0].update(LI=9)))
    if refused:
        with pytest.raises(ResultsFileError, match=r"its meta.content_sha256 is missing, though its run, started "
                                                   r"2026-12-07T08:00:00\+0000, wrote one"):
            read_json(path)
    else:
        assert read_json(path)["groups"]["r4"]["methods"]["DA"]["runs"][0]["LI"] == 9


def test_nan_in_an_edited_file_is_a_mismatch_not_a_crash():
    doc = sealed(_doc())
    doc["groups"]["r4"]["methods"]["DA"]["runs"][0]["LI"] = float("nan")
    assert "no longer matches" in seal_damage(doc)


def test_a_run_meeting_an_edited_results_file_moves_it_aside_and_says_why(tmp_path, capsys):
    path = tmp_path / "table1.json"
    write_json(path, _doc())
    _rewrite(path, lambda d: d["groups"]["r4"]["methods"]["DA"]["runs"].pop())
    assert read_results(path) is None
    assert not path.exists() and (tmp_path / "table1.json.corrupt").exists()
    assert "no longer matches meta.content_sha256" in capsys.readouterr().err


def test_a_run_refused_before_it_starts_moves_no_edited_file_aside(quick, capsys):
    # planning which groups are left reads the files before the settings check refuses the run
    _rewrite(quick / "drift.json", lambda d: d["meta"].update(wall_time_s=999.0))
    before = (quick / "drift.json").read_bytes()
    rc = main(["reproduce", "--profile", "quick", "--results", str(quick.parent), "--seeds", "0", "1", "--no-progress"])
    assert rc == 2 and "computed with other settings" in capsys.readouterr().err
    assert (quick / "drift.json").read_bytes() == before and not list(quick.glob("*.corrupt"))


def test_the_committed_quick_results_are_sealed_and_read(quick):
    assert set(load_results(quick)) == {"table1", "drift"}
    assert read_json(quick / "table1.json")["meta"][SEAL_FIELD]


def test_the_report_refuses_a_shortened_per_seed_list_in_one_line(quick, capsys):
    # Session 42's fuzzing: this edit gave statistics on fewer seeds under a header that said all of them.
    _rewrite(quick / "drift.json", lambda d: d["groups"]["r4"]["DA"]["runs"].pop())
    rc = main(["report", "--profile", "quick", "--results", str(quick.parent)])
    err = capsys.readouterr().err
    assert rc == 1 and "drift.json is not as its run wrote it" in err and "Traceback" not in err
    assert not (quick / "REPORT.md").exists()


def test_every_committed_results_file_carries_a_seal_that_matches():
    tracked = subprocess.run(["git", "ls-files", "*.json"], cwd=REPO, capture_output=True, text=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    results = [p for p in tracked if isinstance((d := json.loads((REPO / p).read_text())), dict)
               and isinstance(d.get("meta"), dict)]
    assert len(results) >= 90
    unsealed = [p for p in results if SEAL_FIELD not in json.loads((REPO / p).read_text())["meta"]]
    assert unsealed == []
    for p in results:
        read_json(REPO / p)  # raises on a mismatch


def test_add_seals_seals_a_file_written_before_seals_adding_one_line(tmp_path, capsys):

    path = tmp_path / "t.json"
    path.write_text(dumps(_doc()) + "\n")  # as write_json wrote results files before seals
    before = path.read_text().splitlines()
    assert add_seals.main([str(path), "--check"]) == 1 and path.read_text().splitlines() == before
    assert add_seals.main([str(path)]) == 0
    after = path.read_text().splitlines()
    assert len(after) == len(before) + 1 and f'  "{SEAL_FIELD}": "{content_digest(_doc())}"' in after
    assert [line.rstrip(",") for line in after if line.strip() != f'"{SEAL_FIELD}": "{content_digest(_doc())}"'] == \
        [line.rstrip(",") for line in before]  # nothing else changed but a comma
    assert read_json(path)["meta"][SEAL_FIELD] == content_digest(_doc())
    assert add_seals.main([str(path), "--check"]) == 0 and "sealed already" in capsys.readouterr().out


def test_add_seals_refuses_to_seal_an_edited_file_again(tmp_path, capsys):
    path = tmp_path / "t.json"
    write_json(path, _doc())
    _rewrite(path, lambda d: d["groups"]["r4"]["methods"]["DA"]["runs"].pop())
    before = path.read_bytes()
    assert add_seals.main([str(path)]) == 2
    assert "no longer matches" in capsys.readouterr().err and path.read_bytes() == before


@pytest.mark.parametrize("text, why", [
    ('{"meta": {"experiment": "x"}, "v": [1.5, NaN]}', "it holds NaN, which sealing would write as null"),
    ('{"meta": {"experiment": "x"}, "v": Infinity}', "it holds Infinity"),
    ('{"meta": {}, "g": {"r4": 1, "r4": 2}}', "it holds the key 'r4' twice in one object"),
], ids=["nan", "infinity", "duplicate-key"])
def test_add_seals_refuses_a_file_that_writing_would_change_beyond_the_seal(tmp_path, capsys, text, why):
    path = tmp_path / "t.json"
    path.write_text(text)
    assert add_seals.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {path}: {why}" + err[len(f"error: {path}: {why}"):] and err.count(str(path)) == 1
    assert path.read_text() == text


def test_the_report_names_the_results_files_that_carry_no_seal(quick):
    from nets.report import render_report

    results = load_results(quick)
    assert "Not sealed" not in render_report(results)
    del results["drift"]["meta"][SEAL_FIELD]  # written before seals, or with the seal removed
    noted = [line for line in render_report(results).splitlines() if line.startswith("Not sealed")]
    assert len(noted) == 1 and noted[0].startswith("Not sealed: drift.json (") and "add_seals" in noted[0]


@pytest.mark.parametrize("provenance, says", [
    ({"r4": {"command": "python -m nets table1 --profile smoke"}}, "recompute it (`python -m nets table1 --profile smoke`;"),
    ({"r4": {"command": "python -m nets table1 --groups r4"}, "t3": {"command": "python -m nets table1 --groups t3"}},
     "recompute it (the commands its group_provenance records, one per group;"),
], ids=["one sitting", "two sittings"])
def test_the_error_names_the_command_or_commands_that_wrote_the_file(tmp_path, provenance, says):
    doc = {**_doc(), "groups": {g: {} for g in provenance}, "group_provenance": provenance}
    doc["meta"]["command"] = provenance[list(provenance)[-1]]["command"]
    path = tmp_path / "table1.json"
    write_json(path, doc)
    _rewrite(path, lambda d: d["meta"].update(seeds=[0]))
    with pytest.raises(ResultsFileError, match=re.escape(says)):
        read_json(path)
