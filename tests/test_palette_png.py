"""PNG figures are stored with a 256-colour palette (``nets.results_io.palette_png``): smaller,
visually the same, resolution kept, and a transparent PNG left as matplotlib wrote it."""

import io

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

from nets import results_io as rio  # noqa: E402


def _figure() -> Figure:
    """A figure like ours: lines, a scatter of many colours, a heatmap, anti-aliased text."""
    rng = np.random.default_rng(0)
    fig = Figure(figsize=(6, 4))
    a, b = fig.subplots(1, 2)
    a.plot(np.linspace(0, 1, 50), rng.random(50), label="a line")
    a.scatter(rng.random(300), rng.random(300), c=rng.random(300), cmap="viridis", alpha=0.6)
    a.legend()
    b.imshow(rng.random((28, 28)), cmap="magma")
    b.set_title(r"$\sigma_{\max}$ and text")
    return fig


def _png(fig: Figure, **kw) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150, **kw)
    return buf.getvalue()


def _rgb(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def test_a_figure_is_stored_with_a_palette_and_is_smaller():
    original = _png(_figure())
    stored = rio.palette_png(original)
    assert Image.open(io.BytesIO(stored)).mode == "P"
    assert len(stored) < len(original)


def test_the_palette_image_matches_the_original_pixel_for_pixel_closely():
    original = _png(_figure())
    err = np.abs(_rgb(rio.palette_png(original)) - _rgb(original))
    assert err.shape[:2] == _rgb(original).shape[:2]
    assert err.mean() < 1.0  # of 255 per channel
    assert np.quantile(err, 0.999) <= 32


def test_the_resolution_and_matplotlibs_text_chunks_are_kept():
    original = _png(_figure())
    before, after = Image.open(io.BytesIO(original)), Image.open(io.BytesIO(rio.palette_png(original)))
    assert after.info["dpi"] == pytest.approx(before.info["dpi"], abs=0.01)
    assert after.text.get("Software") == before.text.get("Software") is not None


def test_a_png_with_transparent_pixels_is_left_unchanged():
    original = _png(_figure(), transparent=True)
    assert rio.palette_png(original) == original


def test_the_same_figure_is_stored_as_the_same_bytes():
    fig = _figure()
    assert rio.palette_png(_png(fig)) == rio.palette_png(_png(fig))


def test_save_figure_file_stores_a_png_with_a_palette_and_a_pdf_as_matplotlib_writes_it(tmp_path):
    fig = _figure()
    png = rio.save_figure_file(fig, tmp_path / "f.png", dpi=150)
    pdf = rio.save_figure_file(fig, tmp_path / "f.pdf")
    assert Image.open(png).mode == "P"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert not list(tmp_path.glob("*.tmp*"))


def _encoded(image: Image.Image, **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, format="png", **kw)
    return out.getvalue()


@pytest.mark.parametrize("case", ["transparent colour", "16-bit", "grey", "not a png"])
def test_pngs_it_cannot_keep_exactly_are_returned_unchanged(case):
    rgb = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3))
    png = {"transparent colour": lambda: _encoded(rgb, transparency=(0, 1, 2)),
           "16-bit": lambda: _encoded(Image.fromarray(np.full((4, 4), 40000, dtype=np.uint16))),
           "grey": lambda: _encoded(rgb.convert("L")),
           "not a png": lambda: b"\x89PNG\r\n\x1a\n" + bytes(30)}[case]()
    assert rio.palette_png(png) == png
