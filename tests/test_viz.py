"""Figures and widgets: the computations behind them, and that the explorer's callbacks redraw."""
import io
import itertools

import numpy as np
import pytest
import torch

from rpmnet.errors import InputError
from rpmnet.model.rpmnet import RPMNet
from rpmnet.viz import architecture, fig2, style


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return RPMNet("resnet18").eval()     # offset convs and row 108 start at exactly zero


def frames(n=3, h=48, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, h, w, generator=g)


def grid(dilation=1):
    r = (-1, 0, 1)
    return [(dilation * a, dilation * b) for a, b in itertools.product(r, r)]


def as_set(points):
    return sorted(map(tuple, np.round(points, 6).tolist()))


def test_zero_offsets_sample_the_regular_grid(model):
    target, reference = frames(2)
    found = fig2.sampling_locations(model, target, reference, y=6, x=9)
    assert {k: v.shape for k, v in found.items()} == {
        "row106": (9, 2), "row107": (81, 2), "row108": (729, 2), "row109": (1, 2)}
    # Row 106: the 3x3 grid around the pixel; 81 and 729: sums of 2 and 3 such grids.
    for row, depth in (("row106", 1), ("row107", 2), ("row108", 3)):
        expected = [(6 + sum(d[0] for d in ds), 9 + sum(d[1] for d in ds))
                    for ds in itertools.product(grid(), repeat=depth)]
        assert as_set(found[row]) == as_set(expected)
    assert found["row109"].tolist() == [[6.0, 9.0]]   # zero flow: the match is the pixel itself


def test_dilated_matching_follows_the_dilation_grid():
    model = RPMNet("resnet18", "dilated", 3, 3).eval()
    target, reference = frames(2, 64, 64)
    found = fig2.sampling_locations(model, target, reference, y=8, x=8)
    expected = [(8 + a[0] + b[0], 8 + a[1] + b[1]) for a, b in itertools.product(grid(3), grid(3))]
    assert as_set(found["row107"]) == as_set(expected)


def test_offsets_move_the_points(model):
    moved = RPMNet("resnet18").eval()
    moved.load_state_dict(model.state_dict())
    with torch.no_grad():
        moved.matching.layers[0].offset.bias.fill_(0.5)     # every tap of row 106: +0.5, +0.5
    target, reference = frames(2)
    found = fig2.sampling_locations(moved, target, reference, y=6, x=9)
    expected = [(6 + a + 0.5, 9 + b + 0.5) for a, b in grid()]
    assert as_set(found["row106"]) == as_set(expected)


def test_pixel_outside_the_feature_grid_is_an_input_error(model):
    target, reference = frames(2)
    with pytest.raises(InputError, match="outside"):
        fig2.sampling_locations(model, target, reference, y=12, x=0)   # h = 48 / 4 = 12


def test_to_image_puts_feature_pixels_at_block_centres():
    points = fig2.to_image(np.array([[0, 0], [2, 3]]), (12, 16), (48, 64))
    assert points.tolist() == [[1.5, 1.5], [9.5, 13.5]]


def test_pca_colours_are_deterministic_and_order_free():
    features = torch.randn(4, 32, 6, 7, generator=torch.Generator().manual_seed(1))
    a = fig2.FeaturePCA(features)(features[2])
    b = fig2.FeaturePCA(features)(features[2])
    c = fig2.FeaturePCA(features.flip(0))(features[2])   # the fit ignores the frame order
    assert a.shape == (6, 7, 3) and 0 <= a.min() and a.max() <= 1
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, c, atol=1e-9)


def labelled_clip(n=4, h=48, w=64):
    labels = np.zeros((n, h, w), np.uint8)
    for t in range(n):
        labels[t, 10:30, 4 + 8 * t:24 + 8 * t] = 1      # a square moving right by 8 px a frame
    return fig2.Clip("square", frames(n, h, w), labels)


def test_track_follows_the_annotated_object(model):
    data = fig2.Fig2Data(model, labelled_clip())
    track = data.track(range(1, 4))
    assert [track[t] for t in (1, 2, 3)] == [(4, 5), (4, 7), (4, 9)]   # square centres / 4


def test_track_keeps_an_occluded_object_where_it_was_last_seen(model):
    clip = labelled_clip()
    clip.labels[2] = 0                                     # object 1 out of view in frame 2
    track = fig2.Fig2Data(model, clip).track(range(1, 4))
    assert [track[t] for t in (1, 2, 3)] == [(4, 5), (4, 5), (4, 9)]


def test_explorer_callbacks_redraw(model):
    data = fig2.Fig2Data(model, labelled_clip())
    explorer = fig2.Explorer({"square": data, "other": fig2.Fig2Data(model, labelled_clip(3, 32, 40))})
    controls = explorer.controls
    assert explorer.drawn_points().shape == (729, 2)
    controls["row"].value = "row106"
    assert explorer.drawn_points().shape == (9, 2)
    before = explorer.drawn_points().copy()
    controls["x"].value = controls["x"].value + 8              # two feature pixels right
    np.testing.assert_allclose(explorer.drawn_points(), before + [8, 0])
    controls["row"].value = "row109"
    assert explorer.drawn_points().shape == (1, 2)
    controls["frame"].value = 3                                 # beyond the other clip's last
    controls["sequence"].value = "other"
    assert controls["frame"].max == 2 and controls["frame"].value == 2 and controls["x"].max == 39
    assert explorer.overlay.get_array().shape[:2] == (32, 40)


def test_sample_taps_reads_the_ramp_where_it_samples():
    image = architecture.ramp_image()
    taps = architecture.sample_taps(image, architecture.hand_offsets(), 4, 4)
    # The ramp is linear, so every bilinear sample equals 10 y + x at its own position.
    # (positions are rounded to 3 decimals in the table: 10 * 0.0005 + 0.0005 at most)
    np.testing.assert_allclose(taps.deform_conv2d, 10 * taps.sample_y + taps.sample_x, atol=6e-3)
    np.testing.assert_allclose(taps.deform_conv2d, taps.scipy_bilinear, atol=2e-3)


def test_zero_offsets_are_a_standard_convolution():
    _, _, diffs = architecture.zero_offset_check()
    assert max(diffs.values()) < 1e-4


def test_run_saves_a_captioned_figure(tmp_path):
    run = style.setup("09", "smoke", results_dir=tmp_path / "results", data_dir=tmp_path,
                      checkpoints_dir=tmp_path)
    fig = style.figure(2, 2)
    fig.add_subplot().plot([0, 1])
    run.save(fig, "line")
    path = tmp_path / "results" / "figures" / "09_line.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(path.parent.iterdir()) == [path]               # no temporary file left behind
    assert run.caption().startswith("profile smoke | data: built-in benchmark")
    assert "threads" in run.caption() or "GPU" in run.caption()


def test_figures_render_to_png_one_way(tmp_path):
    from PIL import Image

    fig = style.figure(2, 1.5)
    fig.add_subplot().plot([0, 1])
    png = style.png_bytes(fig, 50)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    sizes = []
    for data in (png, style.png_bytes(fig, 100)):
        with Image.open(io.BytesIO(data)) as im:
            sizes.append(im.size)
    assert abs(sizes[1][0] - 2 * sizes[0][0]) <= 2                             # the dpi is honoured
    # small figures are stored exactly as rendered (with a white background); a constrained
    # layout settles on its second draw at a dpi, so draw once before comparing
    style.png_bytes(fig, 50, facecolor="white")
    path = style.save_figure(fig, tmp_path / "f.png", dpi=50)
    assert path.read_bytes() == style.png_bytes(fig, 50, facecolor="white")


def test_widgets_show_the_rendered_png(monkeypatch):
    import contextlib

    import IPython.display

    shown, cleared = [], []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    monkeypatch.setattr(IPython.display, "clear_output", lambda wait: cleared.append(wait))
    fig = style.figure(2, 1.5)
    fig.add_subplot().plot([0, 1])
    style.show_png(fig, contextlib.nullcontext())
    assert cleared == [True] and len(shown) == 1 and shown[0].data == style.png_bytes(fig)


@pytest.mark.parametrize("kwargs, message", [
    (dict(profile="huge"), "unknown profile"),
    (dict(device="tpu"), "unknown device"),
    (dict(davis_root="/no/such/folder"), "/no/such/folder: DAVIS root folder does not exist"),
])
def test_setup_rejects_bad_parameters(kwargs, message):
    with pytest.raises(InputError, match=message):
        style.setup("09", **kwargs)


def test_data_sheet_of_a_davis_root_without_attributes(tmp_path):
    from rpmnet.data import davis
    from rpmnet.viz import training

    rng = np.random.default_rng(0)
    for name in ("bear", "car"):
        for t in range(3):
            davis.write_image(tmp_path / "JPEGImages" / "480p" / name / f"{t:05d}.jpg",
                              rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
            davis.write_label(tmp_path / "Annotations" / "480p" / name / f"{t:05d}.png",
                              np.eye(24, 32, dtype=np.uint8))
    split = tmp_path / "ImageSets" / "2017" / "train.txt"
    split.parent.mkdir(parents=True)
    split.write_text("bear\ncar\n")
    run = style.setup("02", "smoke", davis_root=tmp_path, results_dir=tmp_path / "results")
    fig = training.data_sheet(run, frames=3)
    assert [ax.get_ylabel() for ax in fig.axes[::3]] == ["bear", "car"]


def test_contact_sheet_png(tmp_path):
    from PIL import Image

    from rpmnet.data import synthetic
    from rpmnet.viz import training

    root = synthetic.generate(tmp_path / "bench", size=(64, 96), sequences=3, frames=6)
    out = tmp_path / "sheet.png"
    training.contact_sheet(root, out, frames_per_seq=4, panel_width=100, label_width=120)
    with Image.open(out) as im:
        assert im.format == "PNG"
        assert im.size == (120 + 4 * 100, 3 * round(100 * 64 / 96))


def test_overlay_tints_objects_outlines_them_and_whitens_void():
    from rpmnet.data import davis

    image = np.full((7, 7, 3), 100, np.uint8)
    label = np.zeros((7, 7), np.uint8)
    label[2:5, 2:5] = 1
    label[0, 6] = davis.VOID
    out = style.overlay(image, label, alpha=0.5)
    red = np.array(davis.PALETTE[3:6], np.float32)                  # id 1's colour
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert (out[3, 3] == (0.5 * 100 + 0.5 * red).astype(np.uint8)).all()   # inside: tinted
    assert (out[2, 2] == red.astype(np.uint8)).all()                # the outline: the colour itself
    assert (out[0, 6] == 255).all() and (out[6, 0] == 100).all()    # void white, background as is
