"""The seal a results file carries (``nets.results_io.seal``), over arbitrary JSON documents.

Two properties make it a seal: a document written and read back matches its seal, whatever it
holds (floats to the last digit, nesting, unicode keys), and whatever formatting the file is given;
changing any one value of it (a number's last digit, a string, a null, a deleted key or list
element) below its ``meta`` record breaks the match (a file without that record has no seal, and
is refused for lacking it).
"""

from __future__ import annotations

import json
import math

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nets.results_io.json_form import dumps
from nets.results_io.seal import SEAL_FIELD, seal_damage, sealed

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


def _changed(value):
    """A value that differs from ``value`` as JSON (not merely as Python: 1 == 1.0 == True)."""
    if isinstance(value, float) and math.isfinite(value) and value not in (0.0, math.inf):
        bumped = math.nextafter(value, math.inf)
        if math.isfinite(bumped):
            return bumped
    return ["changed", value]


@SETTINGS
@given(DOCS)
def test_a_written_document_read_back_matches_its_seal(doc):
    assert seal_damage(json.loads(dumps(sealed(doc)))) is None


@SETTINGS
@given(DOCS)
def test_any_formatting_of_the_file_matches_its_seal(doc):
    text = json.dumps(sealed(doc), indent=3, sort_keys=True, ensure_ascii=False)
    assert seal_damage(json.loads(text)) is None


@SETTINGS
@given(DOCS, st.data())
def test_changing_any_one_value_breaks_the_seal(doc, data):
    written = json.loads(dumps(sealed(doc)))
    places = [p for p, _ in _paths(written) if p not in ((), ("meta",), ("meta", SEAL_FIELD))]
    assume(places)
    path = data.draw(st.sampled_from(places))
    parent = written
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = _changed(parent[path[-1]])
    assert seal_damage(written) is not None


@SETTINGS
@given(DOCS, st.data())
def test_deleting_any_one_key_or_element_breaks_the_seal(doc, data):
    written = json.loads(dumps(sealed(doc)))
    places = [p for p, _ in _paths(written) if p not in ((), ("meta",), ("meta", SEAL_FIELD))]
    assume(places)
    path = data.draw(st.sampled_from(places))
    parent = written
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    assert seal_damage(written) is not None
