"""The seal a results file carries (``nets.results_io.seal``), over arbitrary JSON documents.

Two properties make it a seal: a document written and read back matches its seal, whatever it
holds (floats to the last digit, nesting, unicode keys), and whatever formatting the file is given
(indentation, key order, whole floats written as integers as jq and JavaScript do); changing any one
value of it (a number's last digit, a number made a boolean, a string, a null, a deleted key or list
element) other than its ``meta`` record as a whole breaks the match. (A document whose ``meta``
record is gone has no seal; ``results_damage`` refuses it as a results file.)
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nets.results_io.files import read_json, write_json
from nets.results_io.json_form import dumps
from nets.results_io.seal import SEAL_FIELD, canonical, seal_damage, sealed

SETTINGS = settings(max_examples=60, deadline=None)

LEAVES = st.none() | st.booleans() | st.integers(-2**60, 2**60) | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text(max_size=8)
JSON = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                         max_size=4), max_leaves=30)
DOCS = st.builds(lambda meta, body: {"meta": meta, **body},
                 st.dictionaries(st.text(max_size=6).filter(lambda k: k != SEAL_FIELD), JSON, max_size=4),
                 st.dictionaries(st.text(max_size=6).filter(lambda k: k != "meta"), JSON, max_size=4))


def _paths(node, path=()):
    """Every (path, value) in a parsed JSON document, containers and leaves."""
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*path, i))


def _changed(value, how: int):
    """A value that differs from ``value`` as JSON (1 and 1.0 are one JSON number; 1 and true are not):
    the next float, the boolean of a 0 or 1, or ``value`` wrapped in a list (``how`` picks)."""
    if how == 0 and isinstance(value, float) and math.isfinite(value) and value != 0.0:
        bumped = math.nextafter(value, math.inf)
        if math.isfinite(bumped):
            return bumped
    if how == 1 and not isinstance(value, bool) and isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    return ["changed", value]


def _whole_as_int(node):
    if isinstance(node, float) and node.is_integer():
        return int(node)
    if isinstance(node, dict):
        return {k: _whole_as_int(v) for k, v in node.items()}
    return [_whole_as_int(v) for v in node] if isinstance(node, list) else node


@SETTINGS
@given(DOCS)
def test_a_document_written_by_write_json_is_read_back_by_read_json_as_it_was(doc):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.json"
        write_json(path, doc)
        back = read_json(path)  # raises where the seal does not match
    assert back["meta"].pop(SEAL_FIELD) and canonical(back) == canonical(doc)


@SETTINGS
@given(DOCS)
def test_any_formatting_of_the_file_matches_its_seal(doc):
    text = json.dumps(sealed(doc), indent=3, sort_keys=True, ensure_ascii=False)
    assert seal_damage(json.loads(text)) is None


@SETTINGS
@given(DOCS)
def test_whole_floats_written_as_integers_match_the_seal(doc):
    assert seal_damage(json.loads(json.dumps(_whole_as_int(json.loads(dumps(sealed(doc))))))) is None


def _written_and_a_place(doc, data):
    """``doc`` as written and read back, the container of one of its values (any but the whole
    document, its ``meta`` record and the seal) and that value's key or index."""
    written = json.loads(dumps(sealed(doc)))
    places = [p for p, _ in _paths(written) if p not in ((), ("meta",), ("meta", SEAL_FIELD))]
    assume(places)
    path = data.draw(st.sampled_from(places))
    parent = written
    for key in path[:-1]:
        parent = parent[key]
    return written, parent, path[-1]


@SETTINGS
@given(DOCS, st.data())
def test_changing_any_one_value_breaks_the_seal(doc, data):
    written, parent, key = _written_and_a_place(doc, data)
    parent[key] = _changed(parent[key], data.draw(st.integers(0, 2)))
    assert seal_damage(written) is not None


@SETTINGS
@given(DOCS, st.data())
def test_deleting_any_one_key_or_element_breaks_the_seal(doc, data):
    written, parent, key = _written_and_a_place(doc, data)
    del parent[key]
    assert seal_damage(written) is not None
