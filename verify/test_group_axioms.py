"""Group and action axioms for every registered group, checked for real.

Finite groups are enumerated exhaustively where that is cheap (every pair or
triple of elements); Hypothesis draws group words, inputs, shapes and dtypes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nets.groups import CyclicTranslations, Group, Translations2D, get_group

GROUPS: list[Group] = [
    get_group("r4"),
    get_group("r2"),
    get_group("t3"),
    get_group("d4"),
    CyclicTranslations(4, "x"),
    CyclicTranslations(2, "y"),
    CyclicTranslations(6, "y"),
    get_group("f2"),
    get_group("f2y"),
    get_group("t2xy"),
    Translations2D(3),
]


def group_id(g: Group) -> str:
    return g.name


def allowed_size(group: Group, k: int) -> tuple[int, int]:
    """An image size the group acts on, scaled by ``k >= 1``."""
    if isinstance(group, CyclicTranslations):
        n = group.order
        return (3 * k, n * k) if group.axis == "x" else (n * k, 3 * k + 1)
    if isinstance(group, Translations2D):
        return (group.n * k, group.n * (k + 1))  # both divisible, not square
    if group.name in ("f2", "f2y", "r2"):
        return (2 * k + 1, 3 * k)  # any size, odd and not square
    return (2 * k, 2 * k)


DTYPES = {
    "float32": (np.float32, torch.float32),
    "float64": (np.float64, torch.float64),
    "int64": (np.int64, torch.int64),
    "uint8": (np.uint8, torch.uint8),
}


@st.composite
def images(draw, group: Group, batch: bool = True):
    """A numpy-drawn tensor of shape (N, C?, H, W) the group can act on."""
    k = draw(st.integers(1, 4))
    H, W = allowed_size(group, k)
    lead = (draw(st.integers(1, 5)),) if batch else ()
    if draw(st.booleans()):
        lead = lead + (draw(st.integers(1, 3)),)
    np_dtype, torch_dtype = DTYPES[draw(st.sampled_from(sorted(DTYPES)))]
    if np.issubdtype(np_dtype, np.floating):
        elems = st.floats(-1e3, 1e3, allow_nan=False, width=32)
    else:
        elems = st.integers(0, 255)
    arr = draw(arrays(np_dtype, lead + (H, W), elements=elems))
    return torch.from_numpy(arr).to(torch_dtype)


def words(group: Group):
    return st.lists(st.integers(0, group.order - 1), min_size=0, max_size=6)


def evaluate_word(group: Group, word: list[int]) -> int:
    out = group.identity
    for g in word:
        out = group.compose(out, g)
    return out


# ---- group axioms ----------------------------------------------------------


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
def test_composition_is_closed(group: Group):
    table = group.cayley_table()
    assert table.shape == (group.order, group.order)
    assert table.min() >= 0 and table.max() < group.order


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
def test_cayley_table_is_a_latin_square(group: Group):
    # each row and column is a permutation: left and right multiplication are bijections
    table = group.cayley_table()
    for row in table:
        assert sorted(row) == list(group.elements)
    for col in table.T:
        assert sorted(col) == list(group.elements)


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
def test_composition_is_associative(group: Group):
    e = group.elements
    for a in e:
        for b in e:
            for c in e:
                assert group.compose(group.compose(a, b), c) == group.compose(a, group.compose(b, c))


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
def test_identity_is_neutral(group: Group):
    for a in group.elements:
        assert group.compose(group.identity, a) == a
        assert group.compose(a, group.identity) == a


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
def test_inverse_gives_identity_on_both_sides(group: Group):
    for a in group.elements:
        inv = group.inverse(a)
        assert group.compose(a, inv) == group.identity
        assert group.compose(inv, a) == group.identity


def test_dihedral_group_is_not_abelian():
    d4 = get_group("d4")
    table = d4.cayley_table()
    assert not np.array_equal(table, table.T)


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@given(data=st.data())
@settings(max_examples=30, deadline=None)
def test_inverse_of_a_word_is_the_reversed_word_of_inverses(group: Group, data):
    word = data.draw(words(group))
    inv_word = [group.inverse(g) for g in reversed(word)]
    assert group.compose(evaluate_word(group, word), evaluate_word(group, inv_word)) == group.identity


# ---- action axioms ---------------------------------------------------------


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_identity_element_acts_as_identity(group: Group, data):
    x = data.draw(images(group))
    assert torch.equal(group.act(x, group.identity), x)


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_action_is_compatible_with_composition(group: Group, data):
    x = data.draw(images(group))
    g1 = data.draw(st.integers(0, group.order - 1))
    g2 = data.draw(st.integers(0, group.order - 1))
    assert torch.equal(group.act(x, group.compose(g1, g2)), group.act(group.act(x, g2), g1))


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_a_word_acts_as_its_product(group: Group, data):
    x = data.draw(images(group))
    word = data.draw(words(group))
    y = x
    for g in reversed(word):
        y = group.act(y, g)
    assert torch.equal(y, group.act(x, evaluate_word(group, word)))


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_action_permutes_pixel_values(group: Group, data):
    x = data.draw(images(group))
    g = data.draw(st.integers(0, group.order - 1))
    y = group.act(x, g)
    assert y.shape == x.shape and y.dtype == x.dtype
    xs = torch.sort(x.flatten(-2), dim=-1).values
    ys = torch.sort(y.flatten(-2), dim=-1).values
    assert torch.equal(xs, ys)  # same multiset of values per image
    if x.dtype.is_floating_point:
        # summation order differs, so equal up to round-off only
        torch.testing.assert_close(torch.linalg.vector_norm(y.double().flatten(-2), dim=-1),
                                   torch.linalg.vector_norm(x.double().flatten(-2), dim=-1),
                                   rtol=1e-12, atol=0)


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_batched_per_sample_action_equals_acting_sample_by_sample(group: Group, data):
    x = data.draw(images(group))
    n = x.shape[0]
    g = data.draw(arrays(np.int64, (n,), elements=st.integers(0, group.order - 1)))
    g = torch.from_numpy(g)
    y = group.act(x, g)
    expected = torch.stack([group.act(x[i], int(g[i])) for i in range(n)])
    assert torch.equal(y, expected)


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@given(data=st.data())
@settings(max_examples=20, deadline=None)
def test_orbit_stacks_every_group_element(group: Group, data):
    x = data.draw(images(group))
    orbit = group.orbit(x)
    assert orbit.shape == (group.order, *x.shape)
    for g in group.elements:
        assert torch.equal(orbit[g], group.act(x, g))


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@given(data=st.data())
@settings(max_examples=10, deadline=None)
def test_the_orbit_per_element_has_the_orbits_values_and_the_element_by_element_gradient(group: Group, data):
    """What orbit does off the CPU for an input that needs grad. Oracle: the gradient of
    sum_g <w_g, g x> is sum_g g^-1 w_g, acting element by element."""
    x = data.draw(images(group)).double()
    xg = x.clone().requires_grad_()
    orbit = group.orbit_per_element(xg)
    assert torch.equal(orbit.detach(), group.orbit(x))
    w = torch.randn(orbit.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    (grad,) = torch.autograd.grad((orbit * w).sum(), xg)
    expected = sum(torch.autograd.grad((group.act(xe := x.clone().requires_grad_(), g) * w[g]).sum(), xe)[0]
                   for g in group.elements)
    torch.testing.assert_close(grad, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@given(data=st.data())
@settings(max_examples=20, deadline=None)
def test_permutation_matrix_represents_the_action(group: Group, data):
    x = data.draw(images(group, batch=False))
    if x.ndim > 2:
        x = x[0]
    H, W = x.shape
    g = data.draw(st.integers(0, group.order - 1))
    P = group.permutation_matrix(g, H, W)
    assert torch.equal(P @ x.double().reshape(-1), group.act(x.double(), g).reshape(-1))


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
def test_permutation_matrices_form_an_orthogonal_representation(group: Group):
    H, W = allowed_size(group, 2)
    P = {g: group.permutation_matrix(g, H, W) for g in group.elements}
    eye = torch.eye(H * W, dtype=torch.float64)
    assert torch.equal(P[group.identity], eye)
    for a in group.elements:
        assert torch.equal(P[a].T @ P[a], eye)
        assert torch.equal(P[group.inverse(a)], P[a].T)
        for b in group.elements:
            assert torch.equal(P[a] @ P[b], P[group.compose(a, b)])


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
def test_action_is_faithful(group: Group):
    # distinct elements move pixels differently (the representation is injective)
    H, W = allowed_size(group, 2)
    idx = group.orbit_index(H, W)
    assert len({tuple(row.tolist()) for row in idx}) == group.order


def oracle_orbit(group: Group, x: torch.Tensor) -> list[torch.Tensor]:
    """The images a group's elements make of ``x``, from torch's own rot90 / flip / roll: the oracle the
    library's cached pixel index (``orbit_index``, read by ``act``, ``orbit`` and ``permutation_matrix``)
    is checked against, element order aside."""
    H, W = x.shape[-2:]
    turns = [torch.rot90(x, k, (-2, -1)) for k in range(4)]
    if group.name == "r4":
        return turns
    if group.name == "r2":
        return turns[::2]
    if group.name == "d4":
        return turns + [t.flip(-1) for t in turns]
    if group.name == "f2":
        return [x, x.flip(-1)]
    if group.name == "f2y":
        return [x, x.flip(-2)]
    if group.name == "t3":
        return [x.roll(k * W // 3, -1) for k in range(3)]
    if isinstance(group, CyclicTranslations):
        side, dim = (W, -1) if group.axis == "x" else (H, -2)
        return [x.roll(k * side // group.order, dim) for k in range(group.order)]
    if isinstance(group, Translations2D):
        n = group.n
        return [x.roll((i * H // n, j * W // n), (-2, -1)) for i in range(n) for j in range(n)]
    raise AssertionError(f"no oracle for {group.name}")


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@settings(max_examples=25, deadline=None)
@given(k=st.integers(1, 4), lead=st.lists(st.integers(1, 3), min_size=1, max_size=3), seed=st.integers(0, 2**31 - 1))
def test_the_orbit_is_the_images_torchs_own_rotations_flips_and_rolls_make(group: Group, k: int, lead: list[int],
                                                                           seed: int):
    """Distinct pixel values, so two images are equal only where the same pixels went to the same places."""
    H, W = allowed_size(group, k)
    n = int(np.prod(lead)) * H * W
    x = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).reshape(*lead, H, W)
    ours = group.orbit(x)
    assert ours.shape == (group.order, *x.shape)
    key = lambda t: tuple(t.flatten().tolist())  # noqa: E731
    assert sorted(map(key, ours)) == sorted(map(key, oracle_orbit(group, x)))
    assert torch.equal(ours[group.identity], x)
