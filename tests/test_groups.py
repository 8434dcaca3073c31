"""Unit tests of nets.groups: lookup, the paper's conventions, and clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from nets.experiments.tsne import element_labels
from nets.groups import D4, R4, T3, CyclicTranslations, Group, Mirror, Rotations, Translations2D, get_group, group_name


def test_lookup_by_name_returns_the_paper_groups():
    assert get_group("r4") is R4 and get_group("R4") is R4
    assert get_group("t3") is T3
    assert get_group("d4") is D4
    t5y = get_group("t5y")
    assert isinstance(t5y, CyclicTranslations) and t5y.order == 5 and t5y.axis == "y"
    assert get_group("t4x") == CyclicTranslations(4, "x")


def test_lookup_of_the_mirrors_and_the_translations_along_both_axes():
    assert get_group("f2") == Mirror("x") and get_group("F2Y") == Mirror("y")
    t3xy = get_group("t3xy")
    assert isinstance(t3xy, Translations2D) and t3xy.order == 9 and t3xy.name == "t3xy"


def test_f2_mirrors_left_right_and_f2y_upside_down_on_any_size():
    x = torch.arange(6).view(2, 3)
    assert torch.equal(get_group("f2").act(x, 1), torch.tensor([[2, 1, 0], [5, 4, 3]]))
    assert torch.equal(get_group("f2y").act(x, 1), torch.tensor([[3, 4, 5], [0, 1, 2]]))


def test_t2xy_element_i_plus_2j_shifts_by_i_half_widths_and_j_half_heights():
    x = torch.arange(8).view(2, 4)
    g = get_group("t2xy")
    assert torch.equal(g.act(x, 1), torch.roll(x, 2, dims=-1))
    assert torch.equal(g.act(x, 2), torch.roll(x, 1, dims=-2))
    assert torch.equal(g.act(x, 3), torch.roll(x, (1, 2), dims=(-2, -1)))


def test_t3xy_needs_height_and_width_divisible():
    with pytest.raises(ValueError, match="t3xy: image height 35 is not divisible by 3"):
        get_group("t3xy").act(torch.zeros(1, 35, 36), 1)
    with pytest.raises(ValueError, match="t3xy: image width 28 is not divisible by 3"):
        get_group("t3xy").act(torch.zeros(1, 36, 28), 1)
    with pytest.raises(ValueError, match="t3xy: image width 40 and height 28 are not divisible by 3"):  # both named
        get_group("t3xy").check_shape(28, 40)


@pytest.mark.skipif(sys.platform != "linux", reason="caps the address space with RLIMIT_AS, as Linux has it")
def test_a_fine_t_n_xy_builds_in_little_memory():
    # construction checks the action on n x n images, not on 2 n^2 x 2 n^2 ones (34 GB for t32xy)
    code = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)); "
            "from nets.groups import get_group; import torch; "
            "print(get_group('t32xy').orbit(torch.zeros(1, 32, 32)).shape[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["1024"], out.stderr[-500:]


def test_a_run_stores_a_built_in_group_by_its_own_name():
    assert [group_name(n) for n in ("R4", " t4x", "t02xy", "F2Y")] == ["r4", "t4", "t2xy", "f2y"]


def test_figures_name_each_element_by_what_it_does():
    assert element_labels(R4) == ["0°", "90°", "180°", "270°"] and element_labels(T3) == ["+0 px", "+12 px", "+24 px"]
    assert element_labels(get_group("t3y")) == ["+0 px y", "+12 px y", "+24 px y"]
    assert element_labels(get_group("t2xy")) == ["(+0, +0) px", "(+18, +0) px", "(+0, +18) px", "(+18, +18) px"]
    assert element_labels(get_group("f2")) == ["id", "flip"] and element_labels(D4) == [str(g) for g in range(8)]


def test_unknown_group_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown group 'so3'"):
        get_group("so3")


def test_r4_generator_rotates_counter_clockwise_by_90_degrees():
    x = torch.tensor([[1, 2], [3, 4]])
    assert torch.equal(R4.act(x, 1), torch.tensor([[2, 4], [1, 3]]))


def test_t3_shifts_by_a_third_of_the_width_cyclically():
    x = torch.arange(6).view(1, 6)
    assert torch.equal(T3.act(x, 1), torch.tensor([[4, 5, 0, 1, 2, 3]]))
    assert T3.order == 3


def test_d4_contains_a_reflection():
    x = torch.tensor([[1, 2], [3, 4]])
    assert torch.equal(D4.act(x, 4), torch.tensor([[2, 1], [4, 3]]))


def test_rotation_of_non_square_image_is_rejected():
    with pytest.raises(ValueError, match="square"):
        R4.act(torch.zeros(2, 4, 5), 1)
    with pytest.raises(ValueError, match="square"):
        D4.orbit(torch.zeros(4, 5))


def test_the_half_turn_acts_on_any_rectangle():
    from nets.groups import get_group

    x = torch.arange(12.0).view(1, 3, 4)
    assert torch.equal(get_group("r2").act(x, 1), torch.rot90(x, 2, (-2, -1)))


def test_width_not_divisible_by_group_order_is_rejected():
    with pytest.raises(ValueError, match="width 35 is not divisible by the group order 3"):
        T3.act(torch.zeros(1, 36, 35), 1)
    with pytest.raises(ValueError, match="height 7 is not divisible"):
        get_group("t2y").act(torch.zeros(7, 4), 1)


def test_element_outside_the_group_is_rejected():
    with pytest.raises(ValueError, match="element 4 is outside the group"):
        R4.act(torch.zeros(3, 3), 4)
    with pytest.raises(ValueError, match="outside the group"):
        R4.act(torch.zeros(2, 3, 3), torch.tensor([0, 7]))
    with pytest.raises(ValueError, match="outside the group"):
        R4.compose(0, -1)


def test_per_sample_elements_must_match_the_batch():
    with pytest.raises(ValueError, match=r"shape \(N,\) matching the batch"):
        R4.act(torch.zeros(3, 4, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="must be integers"):
        R4.act(torch.zeros(2, 4, 4), torch.tensor([0.0, 1.0]))


def test_input_without_two_spatial_dimensions_is_rejected():
    with pytest.raises(ValueError, match=r"shape \(\.\.\., H, W\)"):
        R4.act(torch.zeros(5), 1)


def test_rotations_only_exist_for_orders_that_permute_the_grid():
    with pytest.raises(ValueError, match="n in \\(2, 4\\)"):
        Rotations(8)


def test_action_keeps_device_dtype_and_does_not_alias_input():
    x = torch.arange(16, dtype=torch.int16).view(4, 4)
    y = R4.act(x, 0)
    y[0, 0] = 99
    assert x[0, 0] == 0 and y.dtype == torch.int16


def test_orbit_index_is_cached():
    assert R4.orbit_index(36, 36) is R4.orbit_index(36, 36)


def _shift_group(name: str, step, inverse):
    """A group of order 3 shifting images along their width by ``step(W)`` pixels per element, with
    ``inverse`` as given (right or wrong)."""

    class Shift(Group):
        order = 3

        def compose(self, a, b):
            return (a + b) % 3

        def inverse(self, a):
            return inverse(a)

        def _act_reference(self, grid, g):
            return torch.roll(grid, g * step(grid.shape[-1]), dims=-1)

    Shift.name = name
    return Shift


def test_an_action_that_is_a_group_at_some_widths_only_is_told_to_refuse_the_others():
    """A shift by a third of the width is a group on width 36, not on 40 (13 + 13 + 13 = 39)."""
    shift_by_third = _shift_group("shift3", lambda W: W // 3, lambda a: (-a) % 3)
    with pytest.raises(ValueError, match=r"shift3: inverse\(1\) = 2 does not undo element 1 on 6x40 images; inverse must "
                                         r"match the action \(or, if the action is a group at some image sizes only, "
                                         r"refuse this one in check_shape\)"):
        shift_by_third().orbit_index(6, 40)


def test_an_inverse_wrong_at_the_construction_probe_is_not_told_to_refuse_that_size():
    """The probe's size is not the user's: the fix there is the inverse, not check_shape."""
    wrong_inverse = _shift_group("wrong_inverse", lambda W: 1, lambda a: a)  # 1's inverse is 2
    with pytest.raises(ValueError, match=r"inverse must match the action \(found as the group was built") as e:
        wrong_inverse()
    assert "check_shape" not in str(e.value)


def test_another_devices_orbit_index_is_the_checked_cpu_one_moved_not_built_again():
    calls = []
    group = _custom_group(lambda grid: calls.append(1) or grid.flip(-1))()
    cpu = group.orbit_index(6, 6)
    built = len(calls)
    other = group.orbit_index(6, 6, "meta")  # stands in for CUDA here: a device that is not the CPU
    assert len(calls) == built and other.device.type == "meta" and other.shape == cpu.shape
    assert group.orbit_index(6, 6, "meta") is other


# ---- custom groups and groups given by name (issue 16.5) -------------------------------------
def _custom_group(action):
    from nets.groups import Group

    class Custom(Group):
        name, order = "custom", 2

        def compose(self, a, b):
            return (a + b) % 2

        def inverse(self, a):
            return a

        def _act_reference(self, grid, g):
            return grid if g == 0 else action(grid)

    return Custom


@pytest.mark.parametrize("action,message", [
    (lambda grid: (grid + grid.roll(1, -1)) // 2, "does not act by a permutation of the pixel grid"),  # blends
    (lambda grid: grid.float() * 1.0, "does not act by a permutation of the pixel grid"),  # resampled as floats
    (lambda grid: grid[:-1], "does not act by a permutation of the pixel grid"),  # changes the image size
], ids=["blend", "float", "crop"])
def test_a_custom_group_whose_action_is_not_a_pixel_permutation_is_refused_at_construction(action, message):
    with pytest.raises(ValueError, match=message):
        _custom_group(action)()


def test_an_element_that_moves_no_pixel_is_refused_as_the_identitys_twin():
    """Every model would read LI 0 and SI 1 under it, augmentation included."""
    with pytest.raises(ValueError, match=r"custom: element 1 moves no pixel of 36x36 images; a group's elements must "
                                         r"act differently"):
        _custom_group(lambda grid: grid.clone())()


def test_an_action_that_is_faithful_at_the_probe_size_but_not_at_the_users_is_refused_there():
    shift = _custom_group(lambda grid: grid.roll(18, -1))()  # by 18 pixels: half a turn 36 wide, nothing 18 wide
    with pytest.raises(ValueError, match=r"element 1 moves no pixel of 18x18 images"):
        shift.orbit(torch.zeros(18, 18))


def test_two_elements_that_act_alike_are_named():
    from nets.groups import Group

    class HalfTurnsAsZ4(Group):  # Z4 acting by half turns: 0 and 2 are the identity, 1 and 3 one half turn
        name, order = "z4half", 4

        def compose(self, a, b):
            return (a + b) % 4

        def inverse(self, a):
            return (-a) % 4

        def _act_reference(self, grid, g):
            return torch.rot90(grid, 2 * g, (-2, -1))

    with pytest.raises(ValueError, match=r"z4half: element 2 moves no pixel of 36x36 images"):
        HalfTurnsAsZ4()


def test_two_elements_that_act_alike_and_not_as_the_identity_are_named():
    class TwoHalfTurns(Group):  # Klein four with a and b both half turns, so ab moves nothing
        name, order = "twohalfturns", 4

        def compose(self, a, b):
            return a ^ b

        def inverse(self, a):
            return a

        def _act_reference(self, grid, g):
            return torch.rot90(grid, 2 * (bin(g).count("1") % 2), (-2, -1))

    with pytest.raises(ValueError, match=r"twohalfturns: elements 1 and 2 act alike on 36x36 images; .*: drop the "
                                         r"repeated elements, or refuse this image size in check_shape \(found as"):
        TwoHalfTurns()


def test_a_built_in_group_at_a_size_it_cannot_move_is_refused_without_advice_for_group_authors():
    with pytest.raises(ValueError, match=r"f2: element 1 moves no pixel of 12x1 images; .* than it is\)$"):
        get_group("f2").orbit(torch.zeros(12, 1))


def test_many_new_groups_each_get_their_own_action_not_one_a_collected_group_left():
    """The cache is per group object and dropped with it: a new group at a freed object's address
    cannot meet that group's action."""
    import gc

    x = torch.arange(4.0).view(2, 2)
    for k in range(200):
        axis = -1 if k % 2 else -2
        assert torch.equal(Flip(axis).act(x, 1), x.flip(axis)), k
        gc.collect() if k % 50 == 0 else None


class Flip(Group):
    """A custom group with a parameter: the mirror along ``axis``."""

    name, order = "flip", 2

    def __init__(self, axis: int = -1):
        self.axis = axis

    def compose(self, a, b):
        return (a + b) % 2

    def inverse(self, a):
        return a

    def _act_reference(self, grid, g):
        return grid if g == 0 else grid.flip(self.axis)


def test_a_parameter_changed_in_place_changes_the_action_and_not_the_cached_one_of_new_groups():
    x = torch.arange(4.0).view(2, 2)
    g = Flip(-1)
    assert torch.equal(g.act(x, 1), x.flip(-1))
    g.axis = -2
    assert torch.equal(g.act(x, 1), x.flip(-2))
    assert torch.equal(Flip(-2).act(x, 1), x.flip(-2)) and torch.equal(Flip(-1).act(x, 1), x.flip(-1))


def test_a_group_that_overrides_act_is_refused_since_the_trainer_would_not_use_it():
    class ChannelFlip(Flip):
        def act(self, x, g):
            return x.flip(-3) if g else x

    with pytest.raises(ValueError, match=r"group flip: ChannelFlip.act overrides Group's; only _act_reference defines "
                                         r"the action"):
        ChannelFlip()


class SquareByAssert(Flip):
    """Refuses non-square images with an ``assert``, not a ValueError."""

    def check_shape(self, H, W):
        assert H == W, f"needs square images, got {H}x{W}"


def test_a_check_shape_that_asserts_refuses_the_size_in_one_line():
    from nets.metrics import logit_invariance

    with pytest.raises(ValueError, match=r"^flip: check_shape\(36, 32\) raised AssertionError: needs square images, "
                                         r"got 36x32 \(a group refuses an image size by raising ValueError\)$"):
        logit_invariance(lambda x: x.flatten(1)[:, :3], torch.zeros(2, 36, 32), SquareByAssert())


MIRROR_FOR_36 = """
import torch
from nets.groups import Group


class MirrorFor36(Group):
    name, order = "mirror36", 2

    def compose(self, a, b):
        return (a + b) % 2

    def inverse(self, a):
        return a

    def _act_reference(self, grid, g):  # written for 36-wide images: it indexes column 35
        return grid if g == 0 else grid[:, torch.arange(35, -1, -1)]
"""


def test_an_action_that_fails_at_the_size_in_use_is_named_as_the_groups_not_the_models(user_models):
    from nets.data import synthetic_splits
    from nets.metrics import logit_invariance
    from nets.train import TrainConfig, train_runs

    user_models("groups_for_36", MIRROR_FOR_36)
    group = get_group("groups_for_36:MirrorFor36")  # probed at 36 x 36: it passes
    with pytest.raises(ValueError, match=r"^mirror36: element 1's action \(_act_reference\) raised IndexError on "
                                         r"12x12 images: .*; a size the action cannot take must be refused in "
                                         r"check_shape"):
        logit_invariance(lambda x: x.flatten(1)[:, :3], torch.zeros(2, 12, 12), group)
    splits = synthetic_splits(n_train=16, n_val=8, n_test=8, size=12, n_classes=3)
    net = lambda c: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(144, 3))  # noqa: E731
    with pytest.raises(ValueError, match=r"element 1's action \(_act_reference\) raised IndexError") as e:
        train_runs([TrainConfig(method="WT", group="groups_for_36:MirrorFor36", model="net", n_classes=3, epochs=1,
                                batch_size=8)], [0], splits, device="cpu", progress=False, model_fn=net)
    assert "the model refused" not in str(e.value)


def test_a_refusal_at_construction_says_it_was_found_on_a_probe_image_not_the_users():
    with pytest.raises(ValueError, match=r"found as the group was built, on a 36x36 probe image, whatever the size "
                                         r"of your images\)$"):
        _custom_group(lambda grid: grid * 0)()


def test_an_action_for_square_images_only_met_with_others_is_told_to_refuse_them_in_check_shape():
    transpose = _custom_group(lambda grid: grid.transpose(-2, -1))()  # probed on 36 x 36: it passes
    with pytest.raises(ValueError, match=r"turns 32x28 images into 28x32 ones; an action defined on some image "
                                         r"shapes only \(a transpose: square ones\) must refuse the others in its "
                                         r"check_shape"):
        transpose.orbit(torch.zeros(32, 28))


def test_a_custom_group_whose_identity_moves_pixels_is_refused():
    from nets.groups import Group

    class Shifted(Group):
        name, order = "shifted", 1

        def compose(self, a, b):
            return 0

        def inverse(self, a):
            return 0

        def _act_reference(self, grid, g):
            return grid.roll(1, -1)

    with pytest.raises(ValueError, match="identity"):
        Shifted()


def test_a_custom_group_whose_identity_is_not_element_0_is_refused_in_one_line():
    from nets.groups import Group

    class FlipFirst(Group):  # element 0 flips, element 1 is the identity
        name, order, identity = "flipfirst", 2, 1

        def compose(self, a, b):
            return 1 if a == b else 0

        def inverse(self, a):
            return a

        def _act_reference(self, grid, g):
            return grid.flip(-1) if g == 0 else grid

    with pytest.raises(ValueError, match="the identity must be element 0") as e:
        FlipFirst()
    assert "\n" not in str(e.value)


def test_two_custom_groups_of_one_name_but_other_parameters_act_each_their_own_way():
    from nets.groups import Group

    class HalfShift(Group):  # element 1 shifts by half the image along one axis
        name, order = "halfshift", 2

        def __init__(self, dim):
            self.dim = dim

        def compose(self, a, b):
            return (a + b) % 2

        def inverse(self, a):
            return a

        def _act_reference(self, grid, g):
            return grid.roll(g * grid.shape[self.dim] // 2, self.dim)

    along_x, along_y = HalfShift(-1), HalfShift(-2)
    x = torch.arange(16.0).view(1, 4, 4)
    assert torch.equal(along_x.act(x, 1), x.roll(2, -1))  # the first one used at this size first
    assert torch.equal(along_y.act(x, 1), x.roll(2, -2))
    assert along_x != along_y and HalfShift(-2) == along_y


def _rotations_with(compose=None, inverse=None):
    from nets.groups import Group

    class Rot(Group):
        name, order = "rot", 4

        def compose(self, a, b):
            return (a + b) % 4 if compose is None else compose(a, b)

        def inverse(self, a):
            return (-a) % 4 if inverse is None else inverse(a)

        def _act_reference(self, grid, g):
            return torch.rot90(grid, g, (-2, -1))

    return Rot


def test_a_custom_group_whose_inverse_does_not_undo_its_action_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"rot: inverse\(1\) = 1 does not undo element 1") as e:
        _rotations_with(inverse=lambda a: a)()  # SI would realign the saliency maps wrongly
    assert "\n" not in str(e.value)


def test_a_custom_group_whose_compose_disagrees_with_its_action_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"compose\(0, 1\) = 3, but acting by 1 and then by 0") as e:
        _rotations_with(compose=lambda a, b: (a - b) % 4)()
    assert "\n" not in str(e.value)
    assert _rotations_with()().order == 4  # the right algebra is accepted


def test_a_custom_group_acting_by_a_permutation_is_accepted():
    group = _custom_group(lambda grid: grid.flip(-1))()
    x = torch.arange(16.0).view(1, 4, 4)
    assert torch.equal(group.act(x, 1), x.flip(-1))


def test_as_group_accepts_a_group_or_its_name():
    from nets.groups import R4, as_group

    assert as_group("r4") is R4
    assert as_group(R4) is R4


def test_as_group_refuses_an_unknown_name_listing_the_known_ones():
    from nets.groups import as_group

    with pytest.raises(ValueError, match="known: r4"):
        as_group("r5")
    with pytest.raises(TypeError, match="expected a Group or a group name"):
        as_group(4)


def test_this_packages_groups_are_built_without_the_probe_check_so_a_large_one_is_refused_at_once(monkeypatch):
    """t99xy (9801 elements) probed at its smallest image, 99 x 99, would build a 9801 x 9801 index and
    check its algebra for minutes; ours are checked only at the size they are used at."""
    import nets.group_action as ga

    def no_index(*a, **k):
        raise AssertionError("an orbit index was built at construction")

    monkeypatch.setattr(ga, "cached_orbit_index", no_index)
    g = get_group("t99xy")
    assert g.order == 99 * 99 and not g.check_on_construction
    with pytest.raises(ValueError, match="t99xy: image width 36 and height 36 are not divisible by 99"):
        g.check_shape(36, 36)


def test_a_subclass_of_one_of_ours_is_probed_at_construction_as_any_custom_group():
    class Broken(Mirror):
        def _act_reference(self, grid, g):
            return grid * 0 if g else grid  # not a permutation

    with pytest.raises(ValueError, match="does not act by a permutation of the pixel grid"):
        Broken()
