"""The built-in benchmark: real photos and real silhouettes, filmed by a seeded camera, in DAVIS layout.

Each sequence is a photo bundled with scikit-image (nothing is downloaded) seen through a panning,
zooming camera, with 1-3 objects: real silhouettes (the skimage horse, segmented coins, smooth random
blobs) filled with crops of other photos, moving on smooth paths with rotation and scale change,
each in its own lane across the width. The four difficulties RPM-Net claims robustness to are
switched on per sequence:

    camera_shake   the camera jitters every frame (a shift of 1% of the frame and a 0.4 degree roll,
                   standard deviations), on top of the smooth pan and zoom
    fast_motion    one object swings across a wide lane at up to 0.15-0.2 H per frame (36-48 px at
                   240 rows), beyond the matching module's 7x7 receptive field at H/4 (+-12 px)
    deformation    a smooth warp field, changing over time, bends every silhouette and its texture
    occlusion      the largest object passes in front of its neighbour, leaves the frame, comes back

Without the flag nothing of it happens: objects stay in their lanes (no occlusion), move at most
0.02 H per frame, keep their shape, and the camera path is smooth. Each split cycles through the six
pairs of attributes as complementary couples, so any two sequences of a split show all four and six
sequences show every pair once. Some sequences carry a thin void (255) band around the objects, as
DAVIS annotations do. Same seed, same bytes: one numpy Generator per sequence, fixed JPEG quality.
"""
from __future__ import annotations

import functools
import glob
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from ..errors import InputError
from ..fileio import atomic_dir, write_csv, write_text
from ..guard import clean_leftovers, holdings, output_folder
from . import davis

FORMAT = 2          # bump when the generator's output changes: old benchmarks on disk regenerate
MANIFEST = "synthetic.json"
RESOLUTION = "480p"  # the DAVIS folder name; frames have the requested size whatever it says
ATTRIBUTES = ("camera_shake", "fast_motion", "deformation", "occlusion")
SHORT = {"camera_shake": "shake", "fast_motion": "fast", "deformation": "deform",
         "occlusion": "occlusion"}
# Colour photos inside the scikit-image wheel (skimage/data/; the pooch-only ones are left out).
PHOTOS = {"astronaut": "astronaut.png", "chelsea": "chelsea.png", "coffee": "coffee.png",
          "rocket": "rocket.jpg", "motorcycle": "motorcycle_left.png", "ihc": "ihc.png"}
BACKGROUNDS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle")  # scenes; ihc is texture only
OBJECT_SIZE = {1: (0.35, 0.5), 2: (0.3, 0.42), 3: (0.26, 0.36)}  # longer side / H, by object count
SILHOUETTE_FILES = ("horse.png", "coins.png")


def skimage_file(name: str) -> Path:
    import skimage

    path = Path(skimage.__file__).parent / "data" / name
    if not path.is_file():
        raise InputError(f"{path}: not in this scikit-image install (the benchmark uses its bundled "
                         f"images only)")
    return path


@functools.lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    with Image.open(skimage_file(PHOTOS[name])) as im:
        return np.asarray(im.convert("RGB"))


# ---------------------------------------------------------------- silhouettes: rng -> tight bool mask
def _tight(mask: np.ndarray) -> np.ndarray:
    return mask[ndimage.find_objects(mask.astype(np.uint8))[0]]


@functools.lru_cache(maxsize=None)
def _horse() -> np.ndarray:
    with Image.open(skimage_file("horse.png")) as im:
        return _tight(np.asarray(im.convert("L")) < 128)  # black horse on white


@functools.lru_cache(maxsize=None)
def _coins() -> tuple:
    from skimage.filters import threshold_otsu

    with Image.open(skimage_file("coins.png")) as im:
        gray = np.asarray(im.convert("L"))
    labels, _ = ndimage.label(ndimage.binary_fill_holes(gray > threshold_otsu(gray)))
    shapes = [labels[s] == i + 1 for i, s in enumerate(ndimage.find_objects(labels))]
    return tuple(m for m in shapes if 900 <= m.sum() <= 4000)  # single coins: no specks, no clumps


def _blob(rng) -> np.ndarray:
    """A smooth star-shaped outline: radius 0.6 plus a few low harmonics of the angle."""
    y, x = np.mgrid[-1:1:129j, -1:1:129j]
    angle = np.arctan2(y, x)
    radius = 0.6 + sum(rng.uniform(0, 0.08) * np.cos(k * angle + rng.uniform(0, 2 * np.pi))
                       for k in range(2, 6))
    return _tight(np.hypot(y, x) < radius)


SILHOUETTES = {
    "horse": lambda rng: _horse()[:, ::-1] if rng.random() < 0.5 else _horse(),
    "coin": lambda rng: _coins()[rng.integers(len(_coins()))],
    "blob": _blob,
}


# ---------------------------------------------------------------- the schedule and the scenes
def schedule(seed: int = 0, sequences: int = 12, val_fraction: float = 0.5) -> list[dict]:
    """Name, split, attributes, object count, void flag and photo of every sequence."""
    rng = np.random.default_rng(seed)
    n_val = min(max(round(sequences * val_fraction), 1), sequences - 1)
    couples = [((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2))]
    rows = []
    for split, n in (("train", sequences - n_val), ("val", n_val)):
        pairs = []
        while len(pairs) < n:
            for c in rng.permutation(3):
                pairs += list(couples[c]) if rng.random() < 0.5 else list(couples[c][::-1])
        for pair in pairs[:n]:
            flags = {a: int(i in pair) for i, a in enumerate(ATTRIBUTES)}
            low = 2 if flags["occlusion"] else 1  # crossing needs two objects
            rows.append(dict(split=split, n_objects=int(rng.integers(low, 4)), **flags,
                             void=int(rng.random() < 0.5)))
    backgrounds = [BACKGROUNDS[i % len(BACKGROUNDS)] for i in range(sequences)]
    for i, (row, j) in enumerate(zip(rows, rng.permutation(sequences))):
        row["background"] = backgrounds[j]
        row["sequence"] = f"{i:02d}-{row['background']}"
    return rows


def _smoothstep(u):
    u = np.clip(u, 0, 1)
    return u * u * (3 - 2 * u)


def _oscillation(rng, t, lo, hi, amplitude, speed):
    """A sine path inside [lo, hi] with peak speed `speed` (at most 0.6 rad per frame: no jitter)."""
    amplitude = min(amplitude, (hi - lo) / 2)
    centre = lo + amplitude + rng.random() * max(0.0, hi - lo - 2 * amplitude)
    if amplitude <= 0:
        return np.full_like(t, centre)
    return centre + amplitude * np.sin(min(speed / amplitude, 0.6) * t + rng.uniform(0, 2 * np.pi))


def _object(rng, silhouette, texture, length, deform, t):
    """One object: canonical RGBA (the silhouette, longer side `length` px, filled with a crop of a
    photo), its zoom over time, its warp (if deformed) and the screen radius it never exceeds."""
    mask = SILHOUETTES[silhouette](rng)
    f = length / max(mask.shape)
    h, w = max(4, round(mask.shape[0] * f)), max(4, round(mask.shape[1] * f))
    alpha = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((w, h), Image.BILINEAR))
    src = photo(texture)
    side = int(rng.uniform(0.3, 0.6) * min(src.shape[:2]))
    y0, x0 = rng.integers(0, src.shape[0] - side + 1), rng.integers(0, src.shape[1] - side + 1)
    rgb = np.asarray(Image.fromarray(src[y0:y0 + side, x0:x0 + side]).resize((w, h), Image.BILINEAR))
    rgba = np.pad(np.dstack([rgb, alpha]).astype(np.float32), ((2, 2), (2, 2), (0, 0)))
    zoom = np.exp(0.15 * np.sin(rng.uniform(0.03, 0.08) * t + rng.uniform(0, 2 * np.pi)))
    warp = None
    if deform:  # three travelling sine waves of displacement, 0.5-1 cycles across the object
        direction = rng.normal(0, 1, (3, 2))
        warp = dict(amp=rng.uniform(0.03, 0.045, (3, 2)) * length * rng.choice([-1, 1], (3, 2)),
                    wave=direction / np.linalg.norm(direction, axis=1, keepdims=True)
                    * rng.uniform(0.5, 1.0, (3, 1)) / length,
                    speed=rng.uniform(0.15, 0.3, 3), phase=rng.uniform(0, 2 * np.pi, 3))
    # The farthest silhouette pixel, pushed out by the warp, at the largest zoom.
    ys, xs = np.nonzero(alpha)
    reach = np.hypot(ys - (h - 1) / 2, xs - (w - 1) / 2).max()
    if warp is not None:
        reach += np.linalg.norm(warp["amp"], axis=1).sum()
    return dict(rgba=rgba, zoom=zoom, warp=warp, radius=reach * zoom.max() + 1,
                source=f"{silhouette}/{texture}")


def _scene(row, seed, index, size, frames):
    """Camera and object paths of one sequence, drawn from its own Generator."""
    H, W = size
    rng = np.random.default_rng([seed, index])
    t = np.arange(frames, dtype=np.float64)
    tau = t / (frames - 1)
    K = row["n_objects"]

    # Camera: a window of the photo with the frame's aspect ratio, panning and zooming smoothly.
    src = photo(row["background"])
    zoom = np.array([rng.uniform(0.55, 0.8), rng.uniform(0.55, 0.8)])
    full_h = min(src.shape[0], src.shape[1] * H / W)        # largest window inside the photo
    scale = full_h * zoom.mean() / H                        # photo px per frame px, mid-sequence
    bg = np.asarray(Image.fromarray(src).resize(             # pre-scaled so sampling step is ~1
        (round(src.shape[1] / scale), round(src.shape[0] / scale)), Image.BILINEAR))
    z = zoom[0] + (zoom[1] - zoom[0]) * _smoothstep(tau)
    step = full_h * z / H / scale                           # sampling step in the pre-scaled photo
    shake_px = 0.01 * min(H, W) * row["camera_shake"]
    # Where the window's centre may go: inside the photo with a margin for the roll and the shake.
    extent = np.array(bg.shape[:2], np.float64)[:, None]
    room = np.maximum(extent - (np.array([[H], [W]]) * 1.1 + 6 * shake_px) * step, 0)
    where = rng.uniform(0, 1, (2, 2))                       # start and end, relative to the room
    rel = where[:, :1] + (where[:, 1:] - where[:, :1]) * _smoothstep(tau)
    camera = (room * rel + (extent - room) / 2).T
    shake = np.column_stack([rng.normal(0, shake_px, (frames, 2)),
                             rng.normal(0, np.radians(0.4), frames) * row["camera_shake"]])

    # Objects keep to disjoint lanes across the width, so none covers another by accident; the
    # fast one gets a wide lane. With occlusion, the largest object, in lane 1, sweeps over the one
    # in lane 0 (in front, at its height), out of the frame, and back in. Half the scenes are mirrored.
    names, textures = list(SILHOUETTES), [p for p in PHOTOS if p != row["background"]]
    objects = [_object(rng, names[rng.integers(len(names))], textures[rng.integers(len(textures))],
                       length, row["deformation"], t)
               for length in H * rng.uniform(*OBJECT_SIZE[K], K)]
    occluder = 1 if row["occlusion"] else -1
    if row["occlusion"]:
        big = int(np.argmax([(o["rgba"][..., 3] > 127).sum() for o in objects]))
        objects[1], objects[big] = objects[big], objects[1]
    fast = int(rng.choice([k for k in range(K) if k != occluder])) if row["fast_motion"] else -1
    edges = W * np.cumsum([0] + [4 if k == fast else 1 for k in range(K)]) / (K + 3 * (fast >= 0))
    for k, obj in enumerate(objects):
        obj["id"], r = k + 1, obj["radius"]
        lo, hi = edges[k] + r + 0.02 * W, edges[k + 1] - r - 0.02 * W
        lo, hi = (lo, hi) if lo <= hi else ((lo + hi) / 2,) * 2
        speed = H * (rng.uniform(0.15, 0.2) if k == fast else rng.uniform(0.008, 0.02))
        obj["x"] = _oscillation(rng, t, lo, hi, W if k == fast else W * rng.uniform(0.05, 0.1), speed)
        lo, hi = max(0.3 * H, r), min(0.7 * H, H - r)   # inside the frame if it fits
        lo, hi = (lo, hi) if lo <= hi else ((H - 1) / 2,) * 2
        obj["y"] = _oscillation(rng, t, lo, hi, H * rng.uniform(0.03, 0.08), H * 0.01)
        spin = rng.uniform(0.1, 0.4)                        # radians of swing
        obj["angle"] = rng.uniform(-0.2, 0.2) + _oscillation(rng, t, -spin, spin, spin,
                                                             np.radians(5 if k == fast else 1.5))
    if row["occlusion"]:  # at constant speed, ~0.05 H per frame at 40 frames: no fast motion
        sweeper = objects[occluder]
        out = -sweeper["radius"] - 3 * shake_px
        sweeper["x"] = np.interp(tau, [0, 0.7, 0.75, 1], [sweeper["x"][0], out, out, 0.9 * sweeper["radius"]])
        sweeper["y"] = objects[0]["y"]
    if rng.random() < 0.5:
        for obj in objects:
            obj["x"] = W - 1 - obj["x"]
    order = [o for k, o in enumerate(objects) if k != occluder] + \
            [o for k, o in enumerate(objects) if k == occluder]   # the occluder is drawn last, in front
    pad = max(bg.shape) // 10  # repeated edge: a rare large shake shows no black corner
    return dict(bg=Image.fromarray(np.pad(bg, ((pad, pad), (pad, pad), (0, 0)), mode="edge")),
                camera=camera + pad, step=step, shake=shake, objects=order)


def _sample(image, y, x):
    """Bilinear lookup of all channels at float coordinates, clamped to the border (objects carry
    a zero border, so outside them is transparent)."""
    where = np.stack([y, x])
    return np.stack([ndimage.map_coordinates(image[..., c], where, order=1, mode="nearest")
                     for c in range(image.shape[-1])], -1)


def _render(scene, size, t, void_width):
    """Frame t: the background through the camera, then the objects back to front."""
    H, W = size
    cy, cx = (H - 1) / 2, (W - 1) / 2
    dy, dx, roll = scene["shake"][t]
    cos, sin = math.cos(roll), math.sin(roll)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    yy, xx = yy - cy, xx - cx
    # q: where each pixel of this (shaken) frame looks in the smooth, unshaken frame (centred).
    qy, qx = cos * yy - sin * xx + dy, sin * yy + cos * xx + dx
    # Background: photo = camera + step * q, an affine map that PIL samples bilinearly in C.
    (cam_y, cam_x), step = scene["camera"][t], scene["step"][t]
    affine = (step * cos, step * sin, cam_x + step * (dx - sin * cy - cos * cx),
              -step * sin, step * cos, cam_y + step * (dy + sin * cx - cos * cy))
    image = np.asarray(scene["bg"].transform((W, H), Image.AFFINE, affine, Image.BILINEAR), np.float32)
    label = np.zeros((H, W), np.uint8)
    for obj in scene["objects"]:
        py, px = obj["y"][t] - cy, obj["x"][t] - cx
        # Bounding box in frame pixels: undo the shake on the centre, pad by the object's radius.
        by = cos * (py - dy) + sin * (px - dx) + cy
        bx = -sin * (py - dy) + cos * (px - dx) + cx
        r = obj["radius"] + 2
        y0, y1 = max(0, int(by - r)), min(H, int(by + r) + 1)
        x0, x1 = max(0, int(bx - r)), min(W, int(bx + r) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        sy, sx = qy[y0:y1, x0:x1] - py, qx[y0:y1, x0:x1] - px
        a, s = obj["angle"][t], obj["zoom"][t]
        h, w = obj["rgba"].shape[:2]
        uy = (math.cos(a) * sy + math.sin(a) * sx) / s + (h - 1) / 2
        ux = (-math.sin(a) * sy + math.cos(a) * sx) / s + (w - 1) / 2
        if obj["warp"] is not None:
            wp = obj["warp"]
            for amp, wave, speed, phase in zip(wp["amp"], wp["wave"], wp["speed"], wp["phase"]):
                wave_t = np.sin(2 * np.pi * (wave[0] * uy + wave[1] * ux) + speed * t + phase)
                uy, ux = uy + amp[0] * wave_t, ux + amp[1] * wave_t
        rgba = _sample(obj["rgba"], uy, ux)
        alpha = rgba[..., 3:] / 255.0
        patch = image[y0:y1, x0:x1]
        image[y0:y1, x0:x1] = patch * (1 - alpha) + rgba[..., :3] * alpha
        label[y0:y1, x0:x1][alpha[..., 0] > 0.5] = obj["id"]
    if void_width:  # the background next to the outlines, where an annotator would not commit
        label[(label == 0) & ndimage.binary_dilation(label > 0, iterations=void_width)] = davis.VOID
    return np.clip(image + 0.5, 0, 255).astype(np.uint8), label


# ---------------------------------------------------------------- writing the benchmark
def _params(seed, size, sequences, frames, val_fraction) -> dict:
    return dict(generator="rpmnet.data.synthetic", format=FORMAT, seed=int(seed),
                size=[int(size[0]), int(size[1])], sequences=int(sequences), frames=int(frames),
                val_fraction=float(val_fraction))


def is_complete(root, params: dict) -> bool:
    """A benchmark with these parameters is fully on disk (the manifest is written last)."""
    root = Path(root)
    try:
        if json.loads((root / MANIFEST).read_text()) != params:
            return False
    except (OSError, ValueError):
        return False
    n = params["sequences"] * params["frames"]
    return (all(davis.split_file(root, s).is_file() for s in ("train", "val"))
            and (root / "attributes.csv").is_file()
            and len(list((root / "JPEGImages" / RESOLUTION).glob("*/*.jpg"))) == n
            and len(list((root / "Annotations" / RESOLUTION).glob("*/*.png"))) == n)


# Every file the generator writes; a folder holding anything else is not (only) a benchmark.
_OURS = (MANIFEST, "attributes.csv", "ImageSets/2017/*.txt", f"JPEGImages/{RESOLUTION}/*/[0-9]*.jpg",
         f"Annotations/{RESOLUTION}/*/[0-9]*.png")


def _written(relative: Path) -> bool:
    return any(len(relative.parts) == len(Path(p).parts) and relative.match(p) for p in _OURS)


def _clean_leftovers(out: Path) -> None:
    """The temporary folder of a killed generate() beside `out` (.<name>.<pid>.<hex>.tmp, named
    by fileio.atomic_dir), if its process is gone: another process may be generating the same
    benchmark right now."""
    for tmp in out.parent.glob(f".{glob.escape(out.name)}.*.tmp"):
        pid = tmp.name[len(out.name) + 2:].split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            clean_leftovers(out.parent, [glob.escape(tmp.name)])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _replaceable(out: Path) -> None:
    """`out` may be (re)written: new, empty, or a benchmark of `rpmnet synth` (its manifest) with
    nothing in it that the generator did not write. A DAVIS root, or a benchmark with a user's
    note inside a sequence folder, is refused: regenerating deletes the whole folder."""
    if not output_folder(out, "the benchmark"):
        return
    try:
        ours = json.loads((out / MANIFEST).read_text()).get("generator") == "rpmnet.data.synthetic"
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise InputError(f"{out}: holds {holdings(out)} but no {MANIFEST} of `rpmnet synth`; "
                         f"choose a new or empty --out (nothing was changed)")
    foreign = next((p for p in sorted(out.rglob("*")) if not p.is_dir() and not _written(p.relative_to(out))),
                   None)
    if foreign is not None:
        raise InputError(f"{out}: holds {foreign.relative_to(out)}, which `rpmnet synth` did not "
                         f"write; move it out, or choose another --out (nothing was changed)")


def generate(out, seed: int = 0, size=(240, 432), sequences: int = 12, frames: int = 40,
             val_fraction: float = 0.5, force: bool = False) -> Path:
    """Write the benchmark to `out` (DAVIS-2017 layout) unless it is already there, complete."""
    from tqdm import tqdm

    out = Path(out)
    H, W = size
    if H < 32 or W < 32:
        raise InputError(f"size {H}x{W} is too small; each side must be at least 32 pixels")
    if sequences < 2:
        raise InputError(f"sequences={sequences}: need at least 2 (a train and a val split)")
    if frames < 3:
        raise InputError(f"frames={frames}: need at least 3 (DAVIS scores frames 1..T-2)")
    if int(seed) < 0:
        raise InputError(f"seed={seed}: must be at least 0")
    if not 0 < val_fraction < 1:
        raise InputError(f"val_fraction={val_fraction}: must lie strictly between 0 and 1")
    params = _params(seed, size, sequences, frames, val_fraction)
    if not force and is_complete(out, params):
        return out
    _replaceable(out)
    _clean_leftovers(out)
    rows = schedule(seed, sequences, val_fraction)
    with atomic_dir(out, "the benchmark") as tmp:
        void_width = max(1, round(min(H, W) / 240))
        for i, row in enumerate(tqdm(rows, desc=f"synth {out.name}", unit="seq", disable=None)):
            scene = _scene(row, seed, i, (H, W), frames)
            row["objects"] = " ".join(o["source"] for o in sorted(scene["objects"], key=lambda o: o["id"]))
            for t in range(frames):
                image, label = _render(scene, (H, W), t, void_width * row["void"])
                davis.write_image(tmp / "JPEGImages" / RESOLUTION / row["sequence"] / f"{t:05d}.jpg", image)
                davis.write_label(tmp / "Annotations" / RESOLUTION / row["sequence"] / f"{t:05d}.png", label)
        for split in ("train", "val"):
            write_text(davis.split_file(tmp, split),
                       "".join(r["sequence"] + "\n" for r in rows if r["split"] == split))
        import pandas as pd

        columns = ["sequence", "split", "n_objects", *ATTRIBUTES, "void", "background", "objects"]
        write_csv(tmp / "attributes.csv", pd.DataFrame(rows)[columns])
        write_text(tmp / MANIFEST, json.dumps(params, indent=1) + "\n")
        if not force and is_complete(out, params):   # someone else finished it meanwhile: keep theirs
            shutil.rmtree(tmp)
    return out


def ensure_benchmark(profile="quick", root="data") -> Path:
    """data/synthetic-<profile>/ at the profile's size, generated with seed 0 if missing (a derived
    profile such as cpu-steps2400 uses its base profile's)."""
    from ..config import get_profile

    profile = get_profile(profile)
    return generate(Path(root) / f"synthetic-{profile.data_name}", seed=0, size=profile.synth_size,
                    sequences=profile.synth_sequences, frames=profile.synth_frames)


def attributes(root):
    """attributes.csv of a generated benchmark as a DataFrame."""
    import pandas as pd

    path = Path(root) / "attributes.csv"
    if not path.is_file():
        raise InputError(f"{path}: missing (is {root} a benchmark written by `rpmnet synth`?)")
    return pd.read_csv(path)


# ---------------------------------------------------------------- command line
def parse_size(text: str) -> tuple[int, int]:
    """'480x854' -> (480, 854)."""
    try:
        h, w = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise InputError(f"--size {text!r}: expected HEIGHTxWIDTH, e.g. 240x432 or 480x854") from None
    return h, w


def add_cli(parser):
    parser.add_argument("--out", required=True, help="folder to write (DAVIS-2017 layout)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same bytes (default 0)")
    parser.add_argument("--size", default="240x432", help="HEIGHTxWIDTH of the frames (default 240x432)")
    parser.add_argument("--sequences", type=int, default=12, help="number of sequences, half val (default 12)")
    parser.add_argument("--frames", type=int, default=40, help="frames per sequence (default 40)")
    parser.add_argument("--force", action="store_true", help="regenerate even if already complete")


def cli(args) -> int:
    size = parse_size(args.size)
    root = generate(args.out, seed=args.seed, size=size, sequences=args.sequences,
                    frames=args.frames, force=args.force)
    table = attributes(root)
    counts = ", ".join(f"{SHORT[a]} {int(table[a].sum())}" for a in ATTRIBUTES)
    print(f"{root}: {len(table)} sequences ({(table.split == 'train').sum()} train, "
          f"{(table.split == 'val').sum()} val) x {args.frames} frames at {size[0]}x{size[1]}, "
          f"{int(table.n_objects.sum())} objects; attributes: {counts}")
    return 0
