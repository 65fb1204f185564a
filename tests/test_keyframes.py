"""Key frames and the colour recurrence: colour carried along the motion, bad key frames refused
before any work, resume inside a keyed shot, the bench's first-frame protocol."""
from __future__ import annotations

import json
import signal

import av
import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from media_fixtures import make_clip
from vcgan_cli.bench import POSITIONS, evaluate_quality
from vcgan_cli.cli import main
from vcgan_cli.colour import rgb_to_ycbcr
from vcgan_cli.errors import Interrupted, VcganError
from vcgan_cli.keyframes import KeyFrames
from vcgan_cli.models import ModelConfig
from vcgan_cli.models.chroma import rgb_to_cbcr_tensor, ycbcr_to_rgb_tensor
from vcgan_cli.partial import partial_dir
from vcgan_cli.pipeline import StopRequest, colorize_video
from vcgan_cli.runtime import Colorizer
from vcgan_cli.weights import LoadedWeights

W, H, FRAMES = 160, 120, 30
SQUARE = min(W, H) // 4  # the fixture's moving square (media_fixtures._scene)


class CarryColour(nn.Module):
    """A stand-in for a network trained for the colour recurrence, reduced to its ideal: the
    placeholder's chroma (none for a gray one) on the frame's own luma. With it the tests
    see what the pipeline itself does to the colour: warp it along the motion, or not."""

    def __init__(self):
        super().__init__()
        self.config = ModelConfig(name="carry-colour", extractor="tiny", base_width=4, extractor_channels=8,
                                  nonlocal_blocks=0, colour_recurrence=True)

    def forward(self, x, i):
        luma = (x.float() + 1) * 0.5
        cbcr = rgb_to_cbcr_tensor((i.float() + 1) * 0.5) if i.shape[1] == 3 else torch.zeros_like(luma).repeat(1, 2, 1, 1)
        return ycbcr_to_rgb_tensor(luma, cbcr) * 2 - 1


@pytest.fixture(scope="module")
def carry():
    return Colorizer(LoadedWeights(CarryColour().config, CarryColour(), "test stand-in", True), torch.device("cpu"), torch.float32)


def _square_x(i: int) -> int:
    return int((W - SQUARE) * i / (FRAMES - 1))


def _square(i: int, inset: int = 4) -> tuple[slice, slice]:
    y0, x0 = (H - SQUARE) // 3, _square_x(i)
    return slice(y0 + inset, y0 + SQUARE - inset), slice(x0 + inset, x0 + SQUARE - inset)


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    """The moving-square clip and a key frame of its first frame: the (bright) square yellow,
    the rest gray."""
    folder = tmp_path_factory.mktemp("keys")
    src = folder / "in.mp4"
    info = make_clip(src, width=W, height=H, frames=FRAMES)
    luma = info["luma"][0]
    key = np.repeat(luma[..., None], 3, 2)
    ys, xs = _square(0, inset=0)
    key[ys, xs] = (1.0, 1.0, 0.2)  # a yellow square (Cb about -0.4) on the gray picture
    cv2.imwrite(str(folder / "key.png"), (key[..., ::-1] * 255 + 0.5).astype(np.uint8))
    return src, folder / "key.png", info


def _frames(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24").astype(np.float32) / 255 for f in c.decode(video=0)]


def _chroma(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, cb, cr = rgb_to_ycbcr(rgb, "bt601")
    return cb, cr


def test_a_key_frames_colour_follows_the_moving_object(film, carry, tmp_path):
    src, key, _ = film
    out = tmp_path / "out.mkv"
    result = colorize_video(src, out, model=carry, size=H, codec="ffv1", references=KeyFrames.load(reference=key))
    frames = _frames(out)
    assert len(frames) == FRAMES and result.references[0]["shot"] == 1 and result.references[0]["frame"] == 0
    for t in (0, 10, 20, 25):
        cb, cr = _chroma(frames[t])
        ys, xs = _square(t)
        assert cb[ys, xs].mean() < -0.2, f"frame {t}: the yellow square lost its colour"
        if _square_x(t) > SQUARE + 8:  # the square has left where it started: the colour went with it
            ys0, xs0 = _square(0)
            assert cb[ys, xs].mean() < cb[ys0, xs0].mean() - 0.1, f"frame {t}: the colour stayed behind"
        assert np.hypot(cb[-20:, -20:], cr[-20:, -20:]).mean() < 0.05  # the far corner stays gray
    # without the key frame the same network has no colour to carry
    plain = colorize_video(src, tmp_path / "plain.mkv", model=carry, size=H, codec="ffv1", recurrence="colour")
    assert plain.references == []
    cb, cr = _chroma(_frames(tmp_path / "plain.mkv")[20])
    assert np.hypot(cb, cr).mean() < 0.02


def test_the_shipped_model_carries_a_key_frames_colour_with_the_moving_object(film, tmp_path):
    """The default model itself (not a stand-in): its gate holds the key frame's yellow on the
    moving square and the key's gray elsewhere, through the shot."""
    from vcgan_cli.runtime import load_model

    src, key, _ = film
    model = load_model(None, backend="torch")
    assert model.config.colour_recurrence and model.config.chroma_gate
    out = tmp_path / "out.mkv"
    colorize_video(src, out, model=model, size=H, codec="ffv1", references=KeyFrames.load(reference=key))
    frames = _frames(out)
    assert len(frames) == FRAMES
    for t in (5, 15, 25):
        cb, cr = _chroma(frames[t])
        ys, xs = _square(t)
        assert cb[ys, xs].mean() < -0.2, f"frame {t}: the yellow square lost its colour"
        if _square_x(t) > SQUARE + 8:
            ys0, xs0 = _square(0)
            assert cb[ys, xs].mean() < cb[ys0, xs0].mean() - 0.1, f"frame {t}: the colour stayed behind"
        assert np.hypot(cb[-20:, -20:], cr[-20:, -20:]).mean() < 0.05  # the key's gray is held too


def test_a_resume_inside_a_keyed_shot_carries_on_as_before(film, carry, tmp_path):
    src, key, _ = film
    keys = KeyFrames.load(reference=key)
    whole = tmp_path / "whole.mkv"
    colorize_video(src, whole, model=carry, size=H, codec="ffv1", references=keys)
    out = tmp_path / "out.mkv"
    stop = StopRequest()

    def progress(p):
        if p.frames_done == 12:
            stop.request(signal.SIGTERM)

    with pytest.raises(Interrupted):
        colorize_video(src, out, model=carry, size=H, codec="ffv1", references=keys, progress=progress, stop=stop,
                       segment_seconds=0.0)
    # another key frame is other settings: refused in one line, the work kept
    other = tmp_path / "other.png"
    img = cv2.imread(str(key))
    img[:10] = (0, 255, 0)
    cv2.imwrite(str(other), img)
    with pytest.raises(VcganError, match="references"):
        colorize_video(src, out, model=carry, size=H, codec="ffv1", references=KeyFrames.load(reference=other), resume=True)
    result = colorize_video(src, out, model=carry, size=H, codec="ffv1", references=keys, resume=True, segment_seconds=0.0)
    assert result.resumed_from and result.resumed_from >= 12
    assert [f.tobytes() for f in _frames(out)] == [f.tobytes() for f in _frames(whole)]


def test_key_frames_by_index_name_their_shots_in_the_report(tmp_path):
    src = tmp_path / "cut.mp4"
    make_clip(src, width=W, height=H, frames=40, cut_at=20)
    refs = tmp_path / "refs"
    refs.mkdir()
    for i in (0, 25):
        cv2.imwrite(str(refs / f"{i:06d}.png"), np.full((H // 2, W // 2, 3), (40, 90, 200), np.uint8))  # half size: resized
    (refs / "notes.txt").write_text("not an image: ignored")
    report = tmp_path / "r.json"
    r = CliRunner().invoke(main, ["colorize", str(src), "-o", str(tmp_path / "o.mp4"), "--model", "random:tiny-v1",
                                  "--size", "64", "--references", str(refs), "--report", str(report), "--backend", "torch"])
    assert r.exit_code == 0, r.output
    used = json.loads(report.read_text())["references"]
    assert [(u["film_frame"], u["shot"], u["shot_start"]) for u in used] == [(0, 1, 0), (25, 2, 20)]
    assert "key frames: 000000.png → shot 1, 000025.png → shot 2" in r.output


@pytest.mark.parametrize("case", ["unreadable", "aspect", "past-the-end", "badly-named", "both", "gray-model", "no-folder"])
def test_a_bad_key_frame_is_one_line_before_any_work_and_nothing_is_written(film, tmp_path, case):
    src, key, _ = film
    out = tmp_path / "out.mp4"
    refs = tmp_path / "refs"
    refs.mkdir()
    model = "random:tiny-v1"
    args = []
    if case == "unreadable":
        (tmp_path / "bad.png").write_bytes(b"not a png")
        args, expected = ["--reference", str(tmp_path / "bad.png")], "not an image"
    elif case == "aspect":
        cv2.imwrite(str(refs / "000003.png"), np.zeros((H, 2 * W, 3), np.uint8))
        args, expected = ["--references", str(refs)], "aspect"
    elif case == "past-the-end":
        cv2.imwrite(str(refs / f"{FRAMES:06d}.png"), np.zeros((H, W, 3), np.uint8))
        args, expected = ["--references", str(refs)], "past the end of the film"
    elif case == "badly-named":
        cv2.imwrite(str(refs / "first.png"), np.zeros((H, W, 3), np.uint8))
        args, expected = ["--references", str(refs)], "name each image by the frame index"
    elif case == "both":
        args, expected = ["--reference", str(key), "--references", str(refs)], "not both"
    elif case == "gray-model":
        model = "vcgan-lite"  # shipped, trained for the paper's gray recurrence only
        args, expected = ["--reference", str(key)], "need a model trained for the colour recurrence"
    else:
        args, expected = ["--references", str(tmp_path / "missing")], "not a folder"
    before = sorted(p.name for p in tmp_path.iterdir())
    r = CliRunner().invoke(main, ["colorize", str(src), "-o", str(out), "--model", model, "--size", "64", *args])
    assert r.exit_code != 0
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output, no partial
    assert not partial_dir(out).exists()


def test_the_colour_recurrence_is_refused_for_a_model_not_trained_for_it(film, tmp_path):
    src, _, _ = film
    r = CliRunner().invoke(main, ["colorize", str(src), "-o", str(tmp_path / "o.mp4"), "--model", "vcgan-lite",
                                  "--recurrence", "colour"])
    assert r.exit_code != 0 and "--recurrence colour need a model trained for the colour recurrence" in r.output
    assert not (tmp_path / "o.mp4").exists()


def test_the_bench_scores_first_frame_references_by_part_of_the_clip(film, carry, tmp_path):
    """`vcgan bench --references first`: each clip's true first frame is its key frame. The
    stand-in carries it perfectly where the flow is right, so the first quarter scores far
    above gray and every part is reported."""
    clip = tmp_path / "data" / "clip"
    clip.mkdir(parents=True)
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.random((12, 16, 3)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC)
    for t in range(8):  # a colour picture panning right by 2 px a frame
        frame = np.roll(base, 2 * t, axis=1).clip(0, 1)
        cv2.imwrite(str(clip / f"{t:05d}.png"), (frame[..., ::-1] * 255 + 0.5).astype(np.uint8))
    r = evaluate_quality(tmp_path / "data", model=carry, metrics=("psnr", "cdc"), size=H, references="first")
    row = r["rows"][r["method"]]["mean"]
    gray = r["rows"]["grayscale input"]["mean"]
    assert "first-frame references" in r["method"]
    assert all(row[p] is not None for p in POSITIONS)
    assert row["psnr-first-quarter"] > gray["psnr"] + 8
    assert row["psnr"] > gray["psnr"] + 5
    plain = evaluate_quality(tmp_path / "data", model=carry, metrics=("psnr",), size=H)
    assert "psnr-first-quarter" not in plain["rows"][plain["method"]]["mean"]
    with pytest.raises(VcganError, match="needs a model"):
        evaluate_quality(tmp_path / "data", predictions=tmp_path / "data", references="first")


def test_the_commands_offer_exactly_the_recurrences_the_library_runs():
    from vcgan_cli.cli.bench import bench
    from vcgan_cli.cli.films import colorize
    from vcgan_cli.runtime import RECURRENCES

    for command, name in ((colorize, "recurrence"), (bench, "recurrences")):
        option = next(p for p in command.params if p.name == name)
        assert tuple(option.type.choices) == RECURRENCES
