"""Training data: deterministic resumable sampling, photos (folders and tar shards, grayscale
skipped), clips (videos and frame folders) with flows, synthetic clips with exact flows."""
from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from vcgan_cli.clips import Clip, read_clip
from vcgan_cli.errors import VcganError
from vcgan_cli.flow import warp
from vcgan_cli.train.data import (
    ImageDataset,
    StepSampler,
    VideoDataset,
    flow_pairs,
    jpeg_components,
    looks_gray,
    make_loader,
    warp_tensor,
)

SHIFT = (2, 1)  # content translation of the test clips, pixels per frame (x, y)


# -- synthetic media ---------------------------------------------------------------------------


def _texture(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth, strongly coloured random texture, 8-bit RGB."""
    rng = np.random.default_rng(seed)
    noise = rng.random((h, w, 3)).astype(np.float32)
    tex = cv2.GaussianBlur(noise, (0, 0), 1.5)
    tex = (tex - tex.min((0, 1))) / (np.ptp(tex, (0, 1)) + 1e-6)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    tex[..., 0] = 0.6 * tex[..., 0] + 0.4 * xx / w
    tex[..., 2] = 0.6 * tex[..., 2] + 0.4 * yy / h
    return (np.clip(tex, 0, 1) * 255 + 0.5).astype(np.uint8)


def _write(path: Path, rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(path.suffix, rgb[..., ::-1] if rgb.ndim == 3 else rgb, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    path.write_bytes(buf.tobytes())


def _gray_rgb(h: int, w: int, seed: int) -> np.ndarray:
    g = cv2.cvtColor(_texture(h, w, seed), cv2.COLOR_RGB2GRAY)
    return np.repeat(g[..., None], 3, -1)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict:
    """A folder with 3 colour photos (one small) and 2 gray ones, and a tar shard with 3
    colour photos, one RGB-encoded gray and one single-channel JPEG."""
    root = tmp_path_factory.mktemp("photos")
    folder = root / "folder"
    (folder / "sub").mkdir(parents=True)
    _write(folder / "a.jpg", _texture(90, 120, 1))
    _write(folder / "sub" / "b.png", _texture(100, 80, 2))
    _write(folder / "small.jpg", _texture(30, 40, 3))
    _write(folder / "gray_rgb.jpg", _gray_rgb(90, 120, 4))
    _write(folder / "gray_1ch.jpg", _gray_rgb(90, 120, 5)[..., 0])
    staging = root / "staging"
    staging.mkdir()
    names = []
    for k, img in enumerate([_texture(96, 128, 10), _texture(128, 96, 11), _texture(80, 80, 12)]):
        _write(staging / f"c{k}.jpg", img)
        names.append(f"c{k}.jpg")
    _write(staging / "g0.jpg", _gray_rgb(96, 96, 13))
    _write(staging / "g1.jpg", _gray_rgb(96, 96, 14)[..., 0])
    (staging / "notes.txt").write_text("not an image")
    shard = root / "shard-000.tar"
    with tarfile.open(shard, "w") as tf:
        for name in names + ["g0.jpg", "notes.txt", "g1.jpg"]:
            tf.add(staging / name, arcname=f"imgs/{name}")
    return {"folder": folder, "shard": shard, "root": root}


def _encode_video(path: Path, frames: list[np.ndarray], fps: int = 25) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"crf": "8", "preset": "ultrafast",
                                                              "x264-params": "keyint=4:min-keyint=4:bframes=2:scenecut=0"})
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv444p"
        for f in frames:
            for p in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(p)
        for p in stream.encode():
            out.mux(p)


def _translating(h: int, w: int, n: int, seed: int) -> list[np.ndarray]:
    """Frames whose content moves by -SHIFT per frame, so the backward flow of frame t into
    frame m is +(t - m) * SHIFT."""
    dx, dy = SHIFT
    big = _texture(h + dy * n + 1, w + dx * n + 1, seed)
    return [np.ascontiguousarray(big[k * dy : k * dy + h, k * dx : k * dx + w]) for k in range(n)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("clips")
    video = root / "videos" / "moving.mp4"
    video.parent.mkdir()
    _encode_video(video, _translating(96, 128, 14, 20))
    folder = root / "frames" / "clip"
    folder.mkdir(parents=True)
    for k, f in enumerate(_translating(96, 112, 9, 21)):
        cv2.imwrite(str(folder / f"{k:05d}.png"), f[..., ::-1])
    short = root / "short"
    short.mkdir()
    for k, f in enumerate(_translating(64, 64, 3, 22)):
        cv2.imwrite(str(short / f"{k:05d}.png"), f[..., ::-1])
    return {"video": video, "folder": folder, "short": short, "root": root}


# -- sampling ----------------------------------------------------------------------------------


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a
    )


def test_items_are_a_function_of_seed_and_index(photos):
    a = ImageDataset([photos["folder"], photos["shard"]], size=48, seed=7)
    b = ImageDataset([photos["folder"], photos["shard"]], size=48, seed=7)
    c = ImageDataset([photos["folder"], photos["shard"]], size=48, seed=8)
    assert _same(a[5], b[5]) and _same(a[123456789], b[123456789])
    assert not torch.equal(a[5]["rgb"], a[6]["rgb"])
    assert not torch.equal(a[5]["rgb"], c[5]["rgb"])
    assert len({a[i]["rgb"].sum().item() for i in range(12)}) == 12  # different crops


def test_step_sampler_indices():
    it = iter(StepSampler(2, 3, rank=1, world_size=2))
    first = [next(it) for _ in range(6)]
    assert first == [15, 16, 17, 21, 22, 23]  # steps 2 and 3 of rank 1: (s*2 + 1)*3 + j
    with pytest.raises(ValueError):
        StepSampler(0, 4, rank=2, world_size=2)


def _batches(loader, n):
    it = iter(loader)
    return [next(it) for _ in range(n)]


def test_datasets_pickle(photos, clips):
    images = ImageDataset([photos["folder"], photos["shard"]], size=32, seed=3)
    first = images[0]  # opens the shard in this process
    copy = pickle.loads(pickle.dumps(images))
    assert copy._fds == {} and _same(copy[0], first) and _same(copy[1], images[1])
    videos = VideoDataset([clips["video"]], size=32, frames=3, synthetic_from=[photos["shard"]], synthetic_ratio=0.5)
    copy = pickle.loads(pickle.dumps(videos))
    assert all(_same(copy[i], videos[i]) for i in range(3))


def test_loader_workers_and_resume_give_the_same_batches(photos, clips):
    # give OpenCV a thread pool in this process: forking workers must not deadlock on it
    cv2.GaussianBlur(np.zeros((1000, 1000), np.float32), (0, 0), 3)
    images = ImageDataset([photos["folder"], photos["shard"]], size=32, seed=3)
    plain = _batches(make_loader(images, 4, 0, 0), 4)
    workers = _batches(make_loader(images, 4, 0, 2), 4)
    resumed = _batches(make_loader(images, 4, 3, 2), 1)
    for x, y in zip(plain, workers):
        assert torch.equal(x["rgb"], y["rgb"]) and torch.equal(x["gray"], y["gray"])
    assert torch.equal(resumed[0]["rgb"], plain[3]["rgb"])
    assert not torch.equal(plain[2]["rgb"], plain[3]["rgb"])
    # ranks split each step between them
    r1 = _batches(make_loader(images, 2, 0, 0, rank=1, world_size=2), 1)[0]
    assert torch.equal(r1["rgb"], plain[0]["rgb"][2:])

    videos = VideoDataset([clips["video"]], size=32, frames=3, seed=1,
                          synthetic_from=[photos["folder"]], synthetic_ratio=0.5)
    plain = _batches(make_loader(videos, 3, 0, 0), 2)
    workers = _batches(make_loader(videos, 3, 0, 2), 2)
    resumed = _batches(make_loader(videos, 3, 1, 0), 1)
    for x, y in zip(plain, workers):
        assert all(torch.equal(x[k], y[k]) for k in ("rgb", "gray", "flows", "synthetic"))
    assert torch.equal(resumed[0]["flows"], plain[1]["flows"])
    assert plain[0]["rgb"].shape == (3, 3, 3, 32, 32) and plain[0]["flows"].shape == (3, 3, 2, 32, 32)


# -- photos ------------------------------------------------------------------------------------


def test_folder_and_tar_sources_skip_grayscale(photos):
    ds = ImageDataset([photos["folder"], photos["shard"]], size=48)
    members = sorted(f.member for f in ds.files if f.offset >= 0)
    loose = sorted(Path(f.path).name for f in ds.files if f.offset < 0)
    assert members == ["imgs/c0.jpg", "imgs/c1.jpg", "imgs/c2.jpg"]
    assert loose == ["a.jpg", "b.png", "small.jpg"]
    assert ds.gray_skipped == 4
    assert ds.describe() == "6 colour photos from 1 tar shard and 5 image files, 4 grayscale skipped"
    # the whole folder (shard inside) reads the same photos
    assert len(ImageDataset([photos["root"]], size=48).files) == 6 + 3  # + the staging copies


def test_gray_detection_helpers():
    assert jpeg_components(cv2.imencode(".jpg", _gray_rgb(32, 32, 0)[..., 0])[1].tobytes()) == 1
    assert jpeg_components(cv2.imencode(".jpg", _texture(32, 32, 0))[1].tobytes()) == 3
    assert jpeg_components(b"\x89PNG....") is None
    colour = cv2.imdecode(cv2.imencode(".jpg", _texture(64, 64, 1))[1], cv2.IMREAD_COLOR)
    gray = cv2.imdecode(cv2.imencode(".jpg", _gray_rgb(64, 64, 1))[1], cv2.IMREAD_COLOR)
    assert looks_gray(gray) and not looks_gray(colour)


def test_gray_found_at_load_time_is_replaced(photos):
    # without the index-time scan only the single-channel JPEGs are known to be gray
    ds = ImageDataset([photos["folder"], photos["shard"]], size=32, scan_gray=False)
    assert len(ds.files) == 8 and ds.gray_skipped == 2
    for i in range(40):
        rgb = (ds[i]["rgb"].numpy() + 1) / 2
        assert np.abs(rgb[0] - rgb[1]).max() > 0.1  # colour every time


def test_image_items_shapes_ranges_and_upscaling(photos, tmp_path):
    ds = ImageDataset([photos["folder"], photos["shard"]], size=64)
    for i in range(10):
        item = ds[i]
        assert item["rgb"].shape == (3, 64, 64) and item["gray"].shape == (1, 64, 64)
        assert item["rgb"].dtype == torch.float32 and item["gray"].dtype == torch.float32
        assert item["rgb"].min() >= -1 and item["rgb"].max() <= 1
        w = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
        assert torch.allclose((item["rgb"] * w).sum(0, keepdim=True), item["gray"], atol=1e-5)
    only_small = tmp_path / "small"
    only_small.mkdir()
    _write(only_small / "s.jpg", _texture(30, 40, 3))
    item = ImageDataset([only_small], size=64)[0]
    assert item["rgb"].shape == (3, 64, 64)


def test_no_images_is_a_user_error(tmp_path):
    with pytest.raises(VcganError, match="no colour images"):
        ImageDataset([tmp_path], size=32)
    _write(tmp_path / "g.jpg", _gray_rgb(40, 40, 0))
    with pytest.raises(VcganError, match="1 grayscale skipped"):
        ImageDataset([tmp_path], size=32)


# -- clips -------------------------------------------------------------------------------------


def _direct(source: Clip, plan, size: int) -> np.ndarray:
    """The planned frames decoded independently (whole clip from the start), cropped."""
    frames = [(f * 255 + 0.5).astype(np.uint8) for f in read_clip(source)]
    out = []
    for f in frames[plan.start : plan.start + 5]:
        h, w = f.shape[:2]
        assert round(plan.short_side) == min(h, w) == size  # scale (1, 1): no resize
        x = min(int(plan.ux * (w - size + 1)), w - size)
        y = min(int(plan.uy * (h - size + 1)), h - size)
        c = f[y : y + size, x : x + size]
        out.append(c[:, ::-1] if plan.flip else c)
    return np.stack(out)


@pytest.mark.parametrize("kind", ["video", "folder"])
def test_clip_frames_are_consecutive(clips, kind):
    source = clips[kind]
    size = 96
    ds = VideoDataset([source], size=size, frames=5, scale=(1.0, 1.0))
    clip = Clip("c", video=source) if kind == "video" else Clip("c", frames=sorted(source.iterdir()))
    starts = set()
    for i in range(6):
        plan = ds.plan(i)
        starts.add(plan.start)
        got = ((ds[i]["rgb"].permute(0, 2, 3, 1).numpy() + 1) * 127.5 + 0.5).astype(np.uint8)
        assert np.abs(got.astype(int) - _direct(clip, plan, size)).max() <= 1
    assert len(starts) > 2  # seeks to several places (keyframe every 4 frames in the video)


@pytest.mark.parametrize("kind", ["video", "folder"])
def test_flows_of_a_translation(clips, kind):
    size = 96  # DIS needs room: the longest pair moves 8 px
    ds = VideoDataset([clips[kind]], size=size, frames=5, scale=(1.0, 1.0), flip=False)
    pairs = flow_pairs(5)
    assert pairs == [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3), (0, 4), (1, 4), (2, 4), (3, 4)]
    for i in range(2):
        item = ds[i]
        assert item["flows"].shape == (len(pairs), 2, size, size) and item["synthetic"] is False
        for k, (m, t) in enumerate(pairs):
            expected = torch.tensor([SHIFT[0] * (t - m), SHIFT[1] * (t - m)], dtype=torch.float32).view(2, 1, 1)
            err = (item["flows"][k] - expected).norm(dim=0)
            assert err.median() < 0.5, (k, m, t, err.median())


def test_flip_mirrors_the_flow(clips):
    ds = VideoDataset([clips["folder"]], size=96, frames=3, scale=(1.0, 1.0))
    flipped = next(i for i in range(20) if ds.plan(i).flip)
    flows = ds[flipped]["flows"]
    assert abs(flows[0, 0].median() + SHIFT[0]) < 0.5 and abs(flows[0, 1].median() - SHIFT[1]) < 0.5


def test_clip_scale_and_short_clips(clips):
    ds = VideoDataset([clips["root"] / "frames", clips["short"].parent / "short"], size=40, frames=4)
    assert ds.too_short == 1 and len(ds.clips) == 1
    assert "1 shorter than 4 frames skipped" in ds.describe()
    item = ds[0]
    assert item["rgb"].shape == (4, 3, 40, 40) and item["gray"].shape == (4, 1, 40, 40)
    with pytest.raises(VcganError, match="at least 5 frames"):
        VideoDataset([clips["short"]], size=32, frames=5)
    with pytest.raises(VcganError):
        VideoDataset([clips["video"]], size=32, synthetic_ratio=0.5)  # synthetic without photos


# -- synthetic clips ---------------------------------------------------------------------------


def test_synthetic_clips_have_exact_flows(photos):
    size = 64
    ds = VideoDataset(None, size=size, frames=4, synthetic_from=[photos["folder"], photos["shard"]], seed=2)
    assert "100% synthetic" in ds.describe()
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    moved = 0.0
    for i in range(6):
        item = ds[i]
        assert item["synthetic"] is True and item["flows"].shape == (6, 2, size, size)
        rgb = (item["rgb"] + 1) / 2
        for k, (m, t) in enumerate(flow_pairs(4)):
            flow = item["flows"][k]
            aligned = warp_tensor(rgb[m : m + 1], flow[None])[0]
            x, y = xs + flow[0], ys + flow[1]
            inside = (x >= 1) & (x <= size - 2) & (y >= 1) & (y <= size - 2)
            assert inside.float().mean() > 0.3
            err = (aligned - rgb[t]).abs().mean(0)[inside].mean()
            assert err < 0.02, (i, m, t, float(err))
            moved = max(moved, float(flow.norm(dim=0).mean()))
    assert moved > 1.0  # the camera does move


def test_mixed_real_and_synthetic(photos, clips):
    ds = VideoDataset([clips["video"]], size=32, frames=3, synthetic_from=[photos["folder"]], synthetic_ratio=0.5)
    kinds = [ds.plan(i).synthetic for i in range(40)]
    assert 5 < sum(kinds) < 35
    assert [ds[i]["synthetic"] for i in range(6)] == kinds[:6]


# -- warping -----------------------------------------------------------------------------------


def test_warp_tensor_matches_opencv_warp():
    rng = np.random.default_rng(0)
    h, w = 40, 52
    img = rng.random((h, w, 3)).astype(np.float32)
    # OpenCV's remap interpolates at 1/32-pixel precision: flows on that grid compare exactly
    flow = (np.round(rng.uniform(-3, 3, (h, w, 2)) * 32) / 32).astype(np.float32)
    expected = warp(img, flow)
    got = warp_tensor(torch.from_numpy(img).permute(2, 0, 1)[None], torch.from_numpy(flow).permute(2, 0, 1)[None])
    got = got[0].permute(1, 2, 0).numpy()
    inner = (slice(4, -4), slice(4, -4))
    assert np.abs(got[inner] - expected[inner]).max() < 1e-4
    # a constant flow of whole pixels is a shift
    shift = torch.zeros(1, 2, h, w)
    shift[:, 0] = 3
    t = torch.from_numpy(img).permute(2, 0, 1)[None]
    assert torch.allclose(warp_tensor(t, shift)[..., : w - 3], t[..., 3:], atol=1e-5)
    assert warp_tensor(t.half(), shift).dtype == torch.float16


def test_group_power_balances_collections(tmp_path):
    """A big red collection and a small blue one: by default every photo is equally likely
    (the small one is drawn ~10 % of the time); at power 0 each collection half the time."""
    for name, count, colour in (("big", 18, (200, 30, 30)), ("small", 2, (30, 30, 200))):
        (tmp_path / name).mkdir()
        for i in range(count):
            img = (_texture(40, 40, i) * 0.3 + np.array(colour) * 0.7).astype(np.uint8)
            _write(tmp_path / name / f"{i}.png", img)

    def blue_share(power: float) -> float:
        ds = ImageDataset([tmp_path], size=32, group_power=power)
        items = [ds[i]["rgb"] for i in range(400)]
        return float(np.mean([x[2].mean() > x[0].mean() for x in items]))

    assert 0.04 < blue_share(1.0) < 0.18
    assert 0.40 < blue_share(0.0) < 0.60
    assert "small 50%" in ImageDataset([tmp_path], size=32, group_power=0.0).describe()
    with pytest.raises(VcganError):
        ImageDataset([tmp_path], size=32, group_power=1.5)
