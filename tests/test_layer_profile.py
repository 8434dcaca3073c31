"""Which layers a per-layer profile reads (nets.layer_profile): those whose outputs are tensors with
the batch on their first axis, decided on the first chunk and on a one-sample probe, so that a layer
whose first axis only happens to equal the batch (a sequence-first transformer layer with as many
tokens as the orbit batch) is left out, named, rather than read along its tokens."""

from __future__ import annotations

import threading
import warnings

import pytest
import torch
from torch import nn

from nets.auditing import audit
from nets.groups import R4
from nets.cnn import SmallCNN
from nets.layer_profile import default_layers, layer_invariance_terms
from nets.model_hooks import hooks_firing
from nets.metrics import layer_invariance_profile, logit_invariance
from nets.models import MLP
from nets.train.pooling import GroupPooled

ELEMS = [1, 2, 3]


class SequenceFirst(nn.Module):
    """3x3 patches of 12x12 images, 16 tokens, through torch's default (sequence-first) encoder layer and
    attention: ``enc`` returns ``(16, N, 8)``, ``attn`` a tuple. Four images under R4 are 16 inputs."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Linear(9, 8)
        self.enc = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
        self.attn = nn.MultiheadAttention(8, 2)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        n = x.shape[0]
        tokens = x.reshape(n, 4, 3, 4, 3).permute(0, 1, 3, 2, 4).reshape(n, 16, 9)
        h = self.enc(self.embed(tokens).transpose(0, 1))
        h, _ = self.attn(h, h, h)
        return self.head(h.mean(0))


def _images(n: int) -> torch.Tensor:
    return torch.randn(n, 12, 12, generator=torch.Generator().manual_seed(n))


@pytest.mark.filterwarnings("ignore:enable_nested_tensor")
def test_a_sequence_first_layer_and_a_tuple_output_are_left_out_and_named():
    names, num, den, left_out = layer_invariance_terms(SequenceFirst().eval(), _images(4), R4, ELEMS)
    assert names == ["embed", "head", "logits"] and num.shape == den.shape == (4, 3)
    # enc's 16 tokens equal the orbit batch (4 images x 4): the 2-input probe tells them apart
    assert left_out == {"enc": "its output's first axis is not the batch (on a 2-input probe)",
                        "attn": "returns a tuple, not a tensor"}


@pytest.mark.filterwarnings("ignore:enable_nested_tensor")
def test_the_layers_read_do_not_change_with_the_chunks_and_a_short_last_chunk_does_not_crash():
    model, x = SequenceFirst().eval(), _images(5)
    whole = layer_invariance_terms(model, x, R4, ELEMS)
    chunked = layer_invariance_terms(model, x, R4, ELEMS, chunk_size=4)  # 4 images (16 = the tokens), then 1
    assert whole[0] == chunked[0] and whole[3].keys() == chunked[3].keys() == {"enc", "attn"}
    torch.testing.assert_close(whole[1], chunked[1], rtol=1e-6, atol=0)


@pytest.mark.filterwarnings("ignore:enable_nested_tensor")
def test_the_python_profile_warns_which_layers_have_no_entry():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = layer_invariance_profile(SequenceFirst().eval(), _images(4), R4)
    assert r.shape == (3,)
    said = [str(w.message) for w in caught if "left out" in str(w.message)]
    assert said and "enc (its output's first axis is not the batch (on a 2-input probe))" in said[0]
    assert "attn (returns a tuple" in said[0]
    assert caught[-1].filename == __file__


@pytest.mark.filterwarnings("ignore:enable_nested_tensor", "ignore:There is a performance drop")
def test_the_audit_says_under_its_layer_table_which_layers_it_left_out():
    x = _images(4)
    result = audit(SequenceFirst().eval(), x, None, R4, n_resamples=100)
    assert [n for n, _ in result.layers] == ["embed", "head", "logits"]
    assert result.settings["layers_left_out"] == {"enc": "its output's first axis is not the batch (on a 2-input "
                                                         "probe)", "attn": "returns a tuple, not a tensor"}
    assert "Left out of the layer profile: enc (its output's first axis is not the batch (on a 2-input probe)), attn " \
           "(returns a tuple, not a tensor)." in result.to_markdown()
    fig = result.figure()
    assert any(t.get_text() == "left out: enc, attn" for t in fig.axes[1].texts)


class TransposesAtTwelve(nn.Module):
    """A side layer whose output is its input transposed on a batch of 12 (three images under R4):
    batch-first on the first chunk (16) and on one sample, not on the last chunk."""

    def __init__(self):
        super().__init__()
        self.lin, self.head = nn.Linear(144, 5), nn.Linear(5, 4)
        self.side = nn.Identity()

    def forward(self, x):
        h = self.lin(x.flatten(1))
        self.side(h.t() if h.shape[0] == 12 else h)  # read by the profile only
        return self.head(h)


def test_a_layer_that_leaves_the_batch_axis_in_a_later_chunk_is_refused_in_one_line():
    with pytest.raises(ValueError, match="layer 'side' of the per-layer profile: on 3 samples") as e:
        layer_invariance_terms(TransposesAtTwelve().eval(), _images(7), R4, ELEMS, chunk_size=4)
    assert len(str(e.value).splitlines()) == 1 and "first axis is not the batch" in str(e.value)


class SqueezesItsBatch(nn.Module):
    """A forward that squeezes its hidden batch axis and reshapes the logits back: fine on every batch but one."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin, self.fc = nn.Linear(144, 4), nn.Linear(4, 3)

    def forward(self, x):
        h = self.lin(x.flatten(1)).squeeze()
        return self.fc(h).reshape(x.shape[0], -1)


def test_a_forward_that_differs_on_a_batch_of_one_keeps_its_batch_first_layers():
    names, _, _, left_out = layer_invariance_terms(SqueezesItsBatch().eval(), _images(4), R4, ELEMS)
    assert names == ["lin", "fc", "logits"] and left_out == {}


class OrbitMean(nn.Module):
    """Averages its model's logits over the R4 orbit of each input, as WT's GroupPooled does."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.model = nn.Sequential(nn.Flatten(), nn.Linear(144, 3))

    def forward(self, x):
        orbit = R4.orbit(x)  # (4, N, 12, 12)
        return self.model(orbit.reshape(-1, 12, 12)).reshape(4, x.shape[0], -1).mean(0)


def test_a_layer_run_on_the_orbit_of_each_input_is_named_as_such():
    _, _, _, left_out = layer_invariance_terms(OrbitMean().eval(), _images(4), R4, ELEMS)
    why = "its output's first axis holds 4 inputs per input (inside an orbit-averaging wrapper?)"
    assert left_out == {"model.0": why, "model.1": why}


def test_a_weight_tied_model_pooled_at_its_first_layer_is_profiled_inside_after_the_pooling():
    """GroupPooled calls its model's first_layer and after_first_layer, never its forward: the default
    layers are the inner model's, invariant after the pooling, the first run on the orbit."""
    torch.manual_seed(0)
    wt = GroupPooled(SmallCNN(9, channels=(4, 8), strides=(2, 2), image_size=12), "r4").eval()
    assert default_layers(wt) == ["model.convs.0", "model.convs.1", "model.head"]
    names, num, _, left_out = layer_invariance_terms(wt, _images(5)[:, None], R4, ELEMS)
    assert names == ["model.convs.1", "model.head", "logits"] and bool((num == 0).all())
    assert list(left_out) == ["model.convs.0"] and "4 inputs per input" in left_out["model.convs.0"]


def _cnn() -> SmallCNN:
    torch.manual_seed(0)
    return SmallCNN(4, channels=(4, 8), strides=(2, 2), image_size=12).eval()


def test_a_compiled_models_profile_is_its_modules_even_after_a_measure_compiled_it():
    """torch.compile's graph skips hooks added after it was compiled (LI compiles it here first): the
    profile runs the forward eagerly, reads the original module's layers, and says nothing of our hooks."""
    x = _images(4).unsqueeze(1)
    plain = layer_invariance_profile(_cnn(), x, R4)
    compiled = torch.compile(_cnn(), backend="eager")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's "global hooks on modules" warning came from our probe's hook
        logit_invariance(compiled, x, R4)
        names = default_layers(compiled)
        profile = layer_invariance_profile(compiled, x, R4)
    assert names == [f"_orig_mod.{n}" for n in default_layers(_cnn())]
    torch.testing.assert_close(profile, plain, rtol=1e-6, atol=0)


@pytest.mark.filterwarnings("ignore:.*torch.jit.* is deprecated:DeprecationWarning")
def test_a_torchscript_model_is_audited_without_a_layer_profile_saying_why():
    model, x = _cnn(), _images(4).unsqueeze(1)
    y = torch.tensor([0, 1, 2, 3])
    scripted = audit(torch.jit.trace(model, x), x, y, R4, n_steps=4, n_resamples=200)
    plain = audit(model, x, y, R4, n_steps=4, n_resamples=200)
    assert scripted.layers == [] and "a TorchScript module" in scripted.to_markdown().splitlines()[-1]
    assert {k: e.value for k, e in scripted.measures.items()} == pytest.approx(
        {k: e.value for k, e in plain.measures.items()}, rel=1e-6)
    with pytest.raises(ValueError, match="no per-layer profile: the model is a TorchScript module"):
        layer_invariance_profile(torch.jit.trace(model, x), x, R4)


class _Around(nn.Module):
    """A standardizing step, a network, and a head on its logits."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.pre, self.net, self.head = nn.Identity(), net, nn.Linear(4, 4)

    def forward(self, x):
        return self.head(self.net(self.pre(x)))


@pytest.mark.filterwarnings("ignore:.*torch.jit.* is deprecated:DeprecationWarning")
def test_a_torchscript_layer_inside_a_model_is_left_out_and_named_and_the_other_layers_are_read():
    model, x = _Around(_cnn()), _images(4).unsqueeze(1)
    inner = _Around(torch.jit.trace(_cnn(), x))
    inner.head.load_state_dict(model.head.state_dict())
    names, num, den, left_out = layer_invariance_terms(inner, x, R4, ELEMS)
    plain_names, plain_num, plain_den, _ = layer_invariance_terms(model, x, R4, ELEMS)
    assert names == ["pre", "head", "logits"] and left_out == {"net": "a TorchScript module, which takes no forward hooks"}
    read = [plain_names.index(n) for n in names]
    torch.testing.assert_close((num, den), (plain_num[:, read], plain_den[:, read]), rtol=1e-6, atol=0)
    _, _, _, named = layer_invariance_terms(inner, x, R4, ELEMS, layers=["net.convs.0", "head"])
    assert named == {"net.convs.0": "a TorchScript module, which takes no forward hooks"}


@pytest.mark.filterwarnings("ignore:.*torch.jit.* is deprecated:DeprecationWarning")
def test_a_wrapper_around_a_torchscript_network_is_audited_without_a_layer_profile_saying_why():
    x, y = _images(4).unsqueeze(1), torch.tensor([0, 1, 2, 3])
    wrapped = audit(_Normalized(torch.jit.trace(_cnn(), x)), x, y, R4, n_steps=4, n_resamples=200)
    assert wrapped.layers == [] and "wraps a TorchScript module" in wrapped.to_markdown().splitlines()[-1]
    with pytest.raises(ValueError, match="no per-layer profile: the model wraps a TorchScript module"):
        layer_invariance_profile(_Normalized(torch.jit.trace(_cnn(), x)), x, R4)


class _Normalized(nn.Module):
    """A wrapper that standardizes its images before the network it holds."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net((x - 0.5) / 0.25)


def test_a_model_that_wraps_one_network_is_profiled_by_that_networks_layers():
    x = _images(4).unsqueeze(1)
    assert default_layers(_Normalized(_cnn())) == [f"net.{n}" for n in default_layers(_cnn())]
    torch.testing.assert_close(layer_invariance_profile(_Normalized(_cnn()), x, R4),
                               layer_invariance_profile(_cnn(), (x - 0.5) / 0.25, R4), rtol=1e-6, atol=0)


def test_a_weight_tied_model_pooling_its_logits_is_not_read_as_a_wrapper():
    """Its network runs on the whole orbit: each of its layers would be left out, one by one."""
    pooled = GroupPooled(_Normalized(nn.Sequential(nn.Flatten(), nn.Linear(144, 4))), R4)
    assert pooled.pooling.startswith("logits") and default_layers(pooled) == ["model"]


def _sequential() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 144, 4)).eval()


def test_a_symbolically_traced_model_is_profiled_by_the_modules_its_graph_calls():
    """torch.fx makes a traced model's containers plain modules, which the default walk would read as
    leaves never called."""
    x = _images(4).unsqueeze(1)
    traced = torch.fx.symbolic_trace(_sequential())
    assert default_layers(traced) == default_layers(_sequential()) == ["0", "1", "2", "3"]
    torch.testing.assert_close(layer_invariance_profile(traced, x, R4), layer_invariance_profile(_sequential(), x, R4),
                               rtol=0, atol=0)


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch.export's own
def test_an_exported_model_is_audited_without_a_layer_profile_and_a_fixed_batch_is_named():
    x, y = _images(4).unsqueeze(1), torch.tensor([0, 1, 2, 3])
    dynamic = torch.export.export(_sequential(), (x,), dynamic_shapes={"input": {0: torch.export.Dim("batch")}})
    record = audit(dynamic.module(), x, y, R4, n_steps=4, n_resamples=100)
    assert record.layers == [] and "calls none of its submodules (torch.export" in record.to_markdown()
    assert record.measures["LI"].value == pytest.approx(float(logit_invariance(_sequential(), x, R4)), rel=1e-6)
    fixed = torch.export.export(_sequential(), (x[:2],)).module()
    with pytest.raises(ValueError, match=r"exported \(torch.export\) for inputs of other sizes.*dynamic_shapes") as e:
        logit_invariance(fixed, x, R4)
    assert "BatchNorm" not in str(e.value) and "\n" not in str(e.value)


def test_a_compiled_wrapper_is_profiled_by_its_networks_layers():
    compiled = torch.compile(_Normalized(_cnn()), backend="eager")
    assert default_layers(compiled) == [f"_orig_mod.net.{n}" for n in default_layers(_cnn())]


def test_blocks_that_run_compiled_models_eagerly_in_two_threads_put_the_compilers_stance_back():
    """The stance is the process's: two overlapping blocks share it, and the last to leave restores it."""
    model = torch.compile(nn.Linear(2, 2), backend="eager")
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with hooks_firing(model):
            first_in.set()
            second_in.wait(10)
        first_out.set()

    def second():
        first_in.wait(10)
        with hooks_firing(model):
            second_in.set()
            first_out.wait(10)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert _stance_now() == "default"


def _stance_now() -> str:
    from torch._dynamo import eval_frame  # torch keeps the stance there, with no public reader

    return eval_frame._stance.stance


def _brute_force_r(acts_of, x: torch.Tensor, quarters=(1, 2, 3)) -> torch.Tensor:
    """``r_l`` by its formula, element by element: ``sum_{i, g} ||a(g x_i) - a(x_i)||^2 / sum_{i, g} (||a(x_i)||^2
    + ||a(g x_i)||^2) / 2`` over the rotations by ``quarters`` (``torch.rot90``, not the group's code);
    ``acts_of(images) -> list of (N, ...)`` activations."""
    ref = [a.reshape(len(x), -1) for a in acts_of(x)]
    num, den = torch.zeros(len(ref), dtype=torch.float64), torch.zeros(len(ref), dtype=torch.float64)
    for k in quarters:
        for j, a in enumerate(acts_of(torch.rot90(x, k, dims=(-2, -1)))):
            a = a.reshape(len(x), -1)
            num[j] += (a - ref[j]).pow(2).sum()
            den[j] += 0.5 * (ref[j].pow(2).sum() + a.pow(2).sum())
    return num / den


def test_the_profile_of_a_hooked_model_is_its_formula_layer_by_layer():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(36, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    x = torch.randn(5, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    names, _, _, _ = layer_invariance_terms(net, x, R4, ELEMS)
    assert names == ["0", "1", "2", "3", "logits"]  # the last layer's output is the logits, read twice
    expected = _brute_force_r(lambda z: [net[: i + 1](z) for i in range(4)] + [net(z)], x)
    torch.testing.assert_close(layer_invariance_profile(net, x, "r4"), expected, rtol=1e-12, atol=0)
    rec = audit(net, x, torch.tensor([0, 1, 2, 0, 1]), "r4", n_steps=4)
    torch.testing.assert_close(torch.tensor([e.value for _, e in rec.layers], dtype=torch.float64), expected,
                               rtol=1e-12, atol=0)


def test_the_profile_of_the_papers_mlp_is_its_formula_after_each_relu():
    torch.manual_seed(0)
    mlp = MLP((6, 6), hidden=7, n_hidden_layers=2, n_classes=3).double()
    x = torch.randn(4, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    acts = lambda z: [*mlp.hidden_activations(z), mlp(z)]  # noqa: E731
    torch.testing.assert_close(layer_invariance_profile(mlp, x, "r4"), _brute_force_r(acts, x), rtol=1e-12, atol=0)
    torch.testing.assert_close(layer_invariance_profile(mlp, x, "r4", include_identity=True),
                               _brute_force_r(acts, x, quarters=(0, 1, 2, 3)), rtol=1e-12, atol=0)
