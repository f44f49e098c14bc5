"""The online updating module and the propagation switches (rpmnet.online)."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rpmnet import online, propagate
from rpmnet.cli import main
from rpmnet.data import davis
from rpmnet.errors import InputError
from rpmnet.model.matching import Matching
from rpmnet.model.rpmnet import RPMNet

from test_propagate import write_davis


def small_squares(size=(48, 64), frames=5, step=2, seed=0):
    """Two objects on texture (one moving right by `step` px per frame) and a void band; small
    enough for one 64x64 pass of the embedding."""
    rng = np.random.default_rng(seed)
    background = (rng.random((*size, 3)) * 255).astype(np.uint8)
    images, labels = [], []
    for t in range(frames):
        label = np.zeros(size, np.uint8)
        label[6:22, 6 + step * t:22 + step * t] = 1
        label[28:44, 36:60] = 3
        image = background.copy()
        image[label == 1] = (230, 40, 40)
        image[label == 3] = (40, 200, 60)
        label[27, 36:60] = davis.VOID
        images.append(image)
        labels.append(label)
    return np.stack(images), np.stack(labels)


class TinyNet(torch.nn.Module):
    """A fast stand-in with RPM-Net's interface: a conv embedding pooled to H/4 and a real
    one-layer matching module (Table 2's standard-l1) whose flow is not zero."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = torch.nn.Conv2d(3, 32, 3, padding=1)
        self.matching = Matching("standard", 1)
        torch.nn.init.normal_(self.matching.layers[-1].weight, std=0.05)

    def embed(self, frames):
        return F.avg_pool2d(self.conv(frames), 4, ceil_mode=True)

    def flow(self, target_feat, reference_feat):
        return self.matching(torch.cat([target_feat, reference_feat], 1))

    def match(self, target_feat, reference_feat, source_small):
        from rpmnet.ops import warp

        return warp(source_small, self.flow(target_feat, reference_feat))


def position_codes(h, w, shift=(0, 0)):
    """(1, h*w, h, w) one-hot features: pixel p holds e_(p - shift), zero where p - shift is off
    the image. A target coded with `shift` matches the reference (shift 0) at p - shift."""
    feat = torch.zeros(1, h * w, h, w)
    for y in range(h):
        for x in range(w):
            sy, sx = y - shift[0], x - shift[1]
            if 0 <= sy < h and 0 <= sx < w:
                feat[0, sy * w + sx, y, x] = 1
    return feat


def blob_labels(h, w, seed=0):
    rng = np.random.default_rng(seed)
    ids = torch.from_numpy(rng.integers(0, 3, (h, w)))
    return F.one_hot(ids, 3).permute(2, 0, 1)[None].float(), ids


@pytest.mark.parametrize("shift,radius,found", [((2, -3), 4, True), ((0, 0), 0, True),
                                                ((3, 0), 3, True), ((3, 3), 3, False),
                                                ((0, 4), 3, False), ((5, 6), None, True)])
def test_readout_of_position_codes_reproduces_a_known_shift(shift, radius, found):
    h, w = 10, 13
    labels, ids = blob_labels(h, w)
    out = online.readout(position_codes(h, w, shift), [position_codes(h, w)], [labels],
                         topk=4, radius=radius, temperature=0.01)
    assert out.shape == (1, 3, h, w)
    assert torch.allclose(out.sum(1), torch.ones(1, h, w), atol=1e-5)
    shifted = torch.roll(ids, shift, dims=(0, 1))
    valid = torch.zeros(h, w, dtype=torch.bool)
    valid[max(shift[0], 0):h + min(shift[0], 0), max(shift[1], 0):w + min(shift[1], 0)] = True
    hit = out[0].argmax(0)[valid] == shifted[valid]
    # with the match inside the radius every pixel copies its source label exactly
    assert bool(hit.all()) if found else not bool(hit.all())
    if found:
        assert torch.allclose(out[0, :, valid].max(0).values, torch.ones(int(valid.sum())), atol=1e-4)


def brute_force_readout(q, keys, labels, topk, radius, temperature):
    """The readout's definition, pixel by pixel."""
    q = F.normalize(q[0], dim=0)
    keys = torch.stack([F.normalize(k[0], dim=0) for k in keys])        # R, C, h, w
    labels = torch.stack([lab[0] for lab in labels])                     # R, L, h, w
    c, h, w = q.shape
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    out = torch.zeros(labels.shape[1], h, w)
    for y in range(h):
        for x in range(w):
            near = ((yy - y) ** 2 + (xx - x) ** 2 <= radius ** 2).expand(len(keys), h, w)
            scores = torch.einsum("c,rchw->rhw", q[:, y, x], keys)[near]
            cands = labels.permute(1, 0, 2, 3)[:, near]                   # L, candidates
            top = scores.topk(min(topk, scores.numel()))
            out[:, y, x] = (cands[:, top.indices] * torch.softmax(top.values / temperature, 0)).sum(1)
    return out[None]


def test_local_readout_equals_brute_force_over_tiles_and_references():
    """Width 37 spans two 32-pixel tiles and a ragged end; two references share one top-k."""
    torch.manual_seed(1)
    q, keys = torch.randn(1, 8, 6, 37), [torch.randn(1, 8, 6, 37) for _ in range(2)]
    labels = [torch.softmax(torch.randn(1, 3, 6, 37), 1) for _ in range(2)]
    ours = online.readout(q, keys, labels, topk=5, radius=2, temperature=0.3)
    assert torch.allclose(ours, brute_force_readout(q, keys, labels, 5, 2, 0.3), atol=1e-5)
    # no radius: every pixel of both references competes
    wide = online.readout(q, keys, labels, topk=5, radius=None, temperature=0.3, chunk=50)
    assert torch.allclose(wide, brute_force_readout(q, keys, labels, 5, 100, 0.3), atol=1e-5)


def perturbed_model(seed=0):
    """A resnet18 RPMNet whose flow is not zero (at init it is: the last layer starts at 0)."""
    torch.manual_seed(seed)
    model = RPMNet("resnet18").eval()
    torch.nn.init.normal_(model.matching.layers[-1].weight, std=0.05)
    return model


@pytest.fixture(scope="module")
def squares(tmp_path_factory):
    root = write_davis(tmp_path_factory.mktemp("davis"), {"squares": small_squares()})
    return root, davis.open_split(root, "val")[0]


@pytest.mark.parametrize("paper,ours", [
    (("previous", "soft", 1.0), online.Settings()),
    (("previous", "soft", 0.5), online.Settings()),
    (("previous+first", "hard", 1.0), online.Settings(references="first+last", last_k=1, carry="hard"))])
def test_general_loop_reproduces_the_paper_path(squares, paper, ours):
    _, seq = squares
    model = TinyNet()
    first = propagate.first_labels(seq)
    expected = list(propagate._warp_path(model, seq, first, torch.device("cpu"), len(seq), *paper))
    got = list(online.propagate(model, seq, first, torch.device("cpu"), len(seq), ours, scale=paper[2]))
    assert len(got) == len(seq)
    assert any((e != expected[0]).any() for e in expected[1:])  # the flow moved something
    assert all(np.array_equal(a, b) for a, b in zip(expected, got))


class ConstantFlow(torch.nn.Module):
    """Embeds into zeros; its flow is (dy, dx) everywhere, in H/4 pixels."""

    def __init__(self, dy, dx):
        super().__init__()
        self.d = (dy, dx)

    def embed(self, frames):
        h, w = frames.shape[-2:]
        return frames.new_zeros(1, 32, -(-h // 4), -(-w // 4))

    def flow(self, target_feat, reference_feat):
        flow = target_feat.new_zeros(1, 2, *target_feat.shape[-2:])
        flow[:, 0], flow[:, 1] = self.d
        return flow


def test_full_resolution_warp_moves_the_full_mask_by_the_upsampled_flow(squares):
    """A flow of -1 H/4 pixel in x reads 4 full pixels to the left: the full-size mask moves
    right by exactly 4 pixels per frame (the H/4 path moves it too, through its resampling)."""
    _, seq = squares
    first = propagate.first_labels(seq)
    got = list(online.propagate(ConstantFlow(0.0, -1.0), seq, first, torch.device("cpu"), 3,
                                online.Settings(warp_at="full")))
    for t in (1, 2):
        expected = np.zeros_like(first)
        expected[:, 4 * t:] = first[:, :-4 * t]
        assert np.array_equal(got[t], expected)


def test_fuse_fixed_and_gate():
    warped = torch.tensor([[0.9, 0.5], [0.1, 0.5]]).view(1, 2, 1, 2)
    readout = torch.tensor([[0.2, 0.0], [0.8, 1.0]]).view(1, 2, 1, 2)
    assert torch.allclose(online.fuse(warped, readout, "fixed", 0.25), 0.75 * warped + 0.25 * readout)
    gated = online.fuse(warped, readout, "gate")
    # pixel 0: the warp (0.8 confident) outweighs the readout (0.6); pixel 1: the warp is at
    # chance (0.5/0.5), so the certain readout takes over
    assert torch.allclose(gated[0, :, 0, 0], (0.8 * warped + 0.6 * readout)[0, :, 0, 0] / 1.4, atol=1e-5)
    assert torch.allclose(gated[0, :, 0, 1], torch.tensor([0.0, 1.0]), atol=1e-5)


class FirstLabelOnly(davis.Sequence):
    """A sequence whose later annotations must never be read (design b uses frame 0 only)."""

    def label(self, i):
        if i != 0:
            raise AssertionError(f"read the label of frame {i}")
        return super().label(i)


def test_finetune_never_touches_the_model_and_reads_only_frame_0(squares):
    _, seq = squares
    seq = FirstLabelOnly(seq.name, seq.frames, seq.annotations)
    model = TinyNet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stats = {}
    settings = online.Settings(online="finetune", finetune_steps=3, finetune_lr=1e-2)
    labels = list(propagate.propagate_sequence(model, seq, settings=settings, stats=stats))
    assert len(labels) == len(seq) and stats["finetune_seconds"] > 0
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the original weights, bit for bit
    assert all(p.requires_grad for p in model.parameters())
    first = propagate.first_labels(seq)
    tuned = online.finetune(model, seq, first, torch.device("cpu"), steps=3, lr=1e-2)
    again = online.finetune(model, seq, first, torch.device("cpu"), steps=3, lr=1e-2)
    changed = [not torch.equal(a, b) for a, b in zip(tuned.matching.parameters(), model.matching.parameters())]
    assert any(changed)
    assert all(torch.equal(a, b) for a, b in zip(tuned.matching.parameters(), again.matching.parameters()))
    # and the next sequence starts from the original weights again: same result twice
    assert all(np.array_equal(a, b) for a, b in zip(
        labels, propagate.propagate_sequence(model, seq, settings=settings)))


def test_each_mode_runs_and_records_its_settings(tmp_path, squares):
    root, _ = squares
    model = TinyNet()
    for name in online.NAMED:
        settings = online.named(name).replace(finetune_steps=1)
        out = propagate.propagate_davis(model, root, out=tmp_path / name, device="cpu", settings=settings)
        pngs = sorted((out / "squares").glob("*.png"))
        assert len(pngs) == 5 and set(np.unique(davis.read_label(pngs[-1]))) <= {0, 1, 3}
        key = json.loads((out / propagate.RUN_FILE).read_text())
        assert ("inference" in key) == (not settings.paper_path)
        if not settings.paper_path:
            assert key["inference"] == settings.record()
        assert (out / "finetune_seconds.csv").is_file() == ("finetune" in settings.designs)
    assert json.loads((tmp_path / "flow-hard" / propagate.RUN_FILE).read_text())["carry"] == "hard"
    # a record names only what matters: top-k does not split two flow runs
    assert online.Settings(topk=3).record() == online.Settings().record()
    assert online.Settings(online="readout", topk=3).record() != online.Settings(online="readout").record()


def test_two_settings_never_share_a_folder(tmp_path, squares, capsys):
    root, _ = squares
    base = ["propagate", "--baseline", "zero-flow", "--davis-root", str(root), "--device", "cpu"]
    ckpt = tmp_path / "m.pt"
    from rpmnet import checkpoint

    model = perturbed_model()
    checkpoint.save(ckpt, model=model, model_config=model.config, step=0)
    run = ["propagate", "--checkpoint", str(ckpt), "--davis-root", str(root), "--device", "cpu",
           "--out", str(tmp_path / "o"), "--max-frames", "3"]
    assert main(run + ["--inference", "online-a"]) == 0
    assert main(run + ["--inference", "online-a", "--fusion-weight", "0.3"]) == 2
    assert "different inference" in capsys.readouterr().err
    assert main(run + ["--online", "readout"]) == 0  # the same settings, spelled with flags
    assert main(base + ["--out", str(tmp_path / "b"), "--mode", "affinity"]) == 2
    assert "takes no inference settings" in capsys.readouterr().err


@pytest.mark.parametrize("flags,names", [
    (["--radius", "-1"], "radius=-1"), (["--topk", "0"], "topk=0"), (["--last-k", "0"], "last_k=0"),
    (["--temperature", "0"], "temperature=0"), (["--temperature", "-0.5"], "temperature=-0.5"),
    (["--mode", "optical"], "mode='optical'"), (["--online", "always"], "online='always'"),
    (["--references", "all"], "references='all'"), (["--radius", "twelve"], "--radius"),
    (["--inference", "best"], "'best'"), (["--mode", "affinity", "--warp-at", "full"], "warp_at"),
    (["--fusion-weight", "1.5"], "fusion_weight=1.5"), (["--finetune-steps", "0"], "finetune_steps=0")])
def test_bad_settings_are_one_line_errors_exit_2(tmp_path, squares, capsys, flags, names):
    root, _ = squares
    code = main(["propagate", "--baseline", "zero-flow", "--davis-root", str(root), "--out",
                 str(tmp_path / "o"), *flags])
    err = capsys.readouterr().err
    assert code == 2 and names in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()  # nothing written


def square_labels(h, w, box, k=2):
    """(1, k+1, h, w) one-hot: label 1 inside box (y0, y1, x0, x1), background elsewhere."""
    ids = torch.zeros(h, w, dtype=torch.long)
    ids[box[0]:box[1], box[2]:box[3]] = 1
    return F.one_hot(ids, k + 1).permute(2, 0, 1)[None].float()


def test_readout_scores_only_near_label_edges_and_matches_the_definition(monkeypatch):
    """Far from a label edge of every reference the readout is a known constant: those pixels
    are written, not scored, and every pixel still equals the pixel-by-pixel definition."""
    torch.manual_seed(2)
    h, w, r = 30, 70, 3
    q, keys = torch.randn(1, 8, h, w), [torch.randn(1, 8, h, w) for _ in range(2)]
    labels = [square_labels(h, w, (8, 16, 10, 20)), square_labels(h, w, (9, 17, 12, 22))]
    scored = []
    real_bmm = torch.bmm
    monkeypatch.setattr(online.torch, "bmm", lambda a, b, out: scored.append(len(a)) or real_bmm(a, b, out=out))
    ours = online.readout(q, keys, labels, topk=6, radius=r, temperature=0.2)
    assert torch.allclose(ours, brute_force_readout(q, keys, labels, 6, r, 0.2), atol=1e-5)
    tile = online._tile(r)
    blocks = h * -(-w // tile)
    assert 0 < max(scored) < blocks / 2                # most blocks are far from the squares
    # far from both squares: background exactly; inside both beyond r of the edges: label 1
    assert torch.equal(ours[0, :, 0, 60], torch.tensor([1.0, 0.0, 0.0]))
    scored.clear()
    blank = online.readout(q, keys[:1], [square_labels(h, w, (0, 0, 0, 0))], radius=r)
    assert not scored and torch.equal(blank, square_labels(h, w, (0, 0, 0, 0)))


def test_prepared_references_give_the_readout_and_bad_ones_are_input_errors():
    torch.manual_seed(3)
    q, k = torch.randn(1, 8, 12, 40), torch.randn(1, 8, 12, 40)
    lab = torch.softmax(torch.randn(1, 2, 12, 40), 1)
    for radius in (0, 2, 5, None):
        ref = online.prepare(k, lab, radius)
        assert torch.equal(online.read(q, [ref], 4, 0.1), online.readout(q, [k], [lab], 4, radius, 0.1))
    with pytest.raises(InputError, match="one grid"):
        online.prepare(k, lab[..., :20], 2)
    with pytest.raises(InputError, match="one radius"):
        online.read(q, [online.prepare(k, lab, 2), online.prepare(k, lab, 3)])
    with pytest.raises(InputError, match="target's grid"):
        online.read(q[..., :20], [online.prepare(k, lab, 2)])


def test_design_a_loop_reads_frame_0_through_its_prepared_reference(squares):
    """With weight 1 on the readout, design (a)'s labels are frame 0's readout at each frame."""
    _, seq = squares
    model = TinyNet()
    first = propagate.first_labels(seq)
    settings = online.Settings(online="readout", fusion_weight=1.0, radius=2, topk=3)
    got = list(online.propagate(model, seq, first, torch.device("cpu"), len(seq), settings))
    with torch.inference_mode():
        feat0 = model.embed(propagate.frame_tensor(seq, 0, "cpu"))
        map0 = propagate.to_grid(propagate.one_hot(first, int(first.max()), "cpu"), feat0.shape[-2:])
        for t in range(1, len(seq)):
            feat = model.embed(propagate.frame_tensor(seq, t, "cpu"))
            soft = online.readout(feat, [feat0], [map0], 3, 2, settings.temperature)
            assert np.array_equal(got[t], propagate.hard_labels(soft, first.shape))


def test_search_csv_merges_its_rows_into_the_table(tmp_path):
    root = write_davis(tmp_path / "davis", {"squares": small_squares()}, split="train", other_split="val")
    ckpt = tmp_path / "m.pt"
    from rpmnet import checkpoint

    model = perturbed_model()
    checkpoint.save(ckpt, model=model, model_config=model.config, step=0)
    out = tmp_path / "search.csv"
    grid = {"flow": online.Settings(), "a": online.Settings(online="readout", radius=2)}
    first = online.search_csv(ckpt, root, grid, out, max_frames=3)
    assert list(first["setting"]) == ["flow", "a"] and first["J&F"].between(0, 1).all()
    again = online.search_csv(ckpt, root, {"a": grid["a"], "b": online.Settings(carry="hard")}, out,
                              max_frames=3)
    assert list(again["setting"]) == ["flow", "a", "b"]
    assert again.set_index("setting").loc["a", "J&F"] == first.set_index("setting").loc["a", "J&F"]
    assert json.loads(again.set_index("setting").loc["b", "record"])["carry"] == "hard"
