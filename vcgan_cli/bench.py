"""``vcgan bench``: quality against ground truth, and speed, measured the same way each time.

Quality: each ground-truth colour clip is converted to grayscale (BT.601 luma), colourised
(or an existing folder of predictions is read), and scored frame by frame at the ground
truth's resolution. The grayscale input and the ground truth itself are always scored too,
as reference rows. Clips stream through; none is held in memory.

Speed: decode, flow, network and encode are timed separately on the same frames (warm-up
excluded, median of the per-frame times), then the whole pipeline end to end.
"""
from __future__ import annotations

import itertools
import os
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from .clips import VIDEO_EXTENSIONS, Clip, find_clips, images_in, read_clip
from .colour import rgb_to_gray
from .errors import VcganError
from .metrics import METRICS, ClipScorer, FlowReference
from .pipeline import colorize_frames, compose
from .runtime import Colorizer

GRAY_ROW = "grayscale input"
GT_ROW = "ground truth"


def _prediction_clip(pred_root: Path, data_root: Path, clip: Clip) -> Clip:
    """The predictions for ``clip``: same relative layout under ``pred_root``, or a folder
    (or video) named after the clip anywhere directly inside it."""
    candidates = []
    if clip.frames is not None:
        rel = clip.frames[0].parent.relative_to(data_root) if data_root.is_dir() else Path(clip.name)
        candidates += [pred_root / rel, pred_root / "JPEGImages" / "480p" / clip.name, pred_root / clip.name]
    for c in candidates:
        if c.is_dir() and images_in(c):
            return Clip(clip.name, frames=images_in(c))
    for ext in VIDEO_EXTENSIONS:
        if (pred_root / f"{clip.name}{ext}").is_file():
            return Clip(clip.name, video=pred_root / f"{clip.name}{ext}")
    raise VcganError(f"{pred_root}: no predictions for clip {clip.name!r} (same layout as the ground truth expected)")


def evaluate_quality(
    data: str | os.PathLike,
    *,
    model: Colorizer | None = None,
    predictions: str | os.PathLike | None = None,
    metrics: tuple[str, ...] = METRICS,
    size: int | None = None,
    max_frames: int | None = None,
    max_clips: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    recurrence: str = "gray",
    references: str | None = None,
) -> dict:
    """Score a model (or a folder of predictions) on every clip of ``data``.

    Returns ``{"rows": {row: {"clips": {clip: summary}, "mean": summary}}, ...}`` where a
    summary maps metric → value; means are over clips (each clip weighs the same).
    ``recurrence``: the model's ("gray", the paper's, or "colour"). ``references="first"``:
    the protocol of exemplar-based papers, each clip's true first frame given as its key
    frame; the model's PSNR is then also reported over each clip's first quarter, middle half
    and last quarter of frames (``psnr-first-quarter`` …), so colour decay is visible.
    """
    if references not in (None, "first"):
        raise VcganError(f"--references {references!r}: the bench knows 'first' (each clip's true first frame)")
    if references and model is None:
        raise VcganError("--references needs a model, not --predictions")
    if (model is None) == (predictions is None):
        raise VcganError("bench: give a model or --predictions (one of them)")
    unknown = set(metrics) - set(METRICS)
    if unknown:
        raise VcganError(f"unknown metric(s) {', '.join(sorted(unknown))}; known: {', '.join(METRICS)}")
    data = Path(data)
    clips = find_clips(data)[:max_clips]
    method = f"{model.name}" if model is not None else f"predictions ({Path(predictions).name})"
    if model is not None and (recurrence != "gray" or references):
        method += f" ({', '.join(filter(None, (f'{recurrence} recurrence', 'first-frame references' if references else None)))})"
    rows: dict[str, dict] = {r: {"clips": {}} for r in (method, GRAY_ROW, GT_ROW)}
    for n, clip in enumerate(clips):
        if progress:
            progress(clip.name, n, len(clips))
        scorers = {r: ClipScorer(metrics=metrics) for r in rows}
        ref = FlowReference()
        if model is not None:
            # tee buffers one frame: the ground truth is read once for both uses
            for_model, gts = itertools.tee(read_clip(clip, max_frames))
            lumas = (rgb_to_gray(g) for g in for_model)
            keys = {0: next(read_clip(clip, 1))} if references == "first" else None
            pairs = (
                (gt, compose(rgb_to_gray(gt), rgb))
                for gt, (rgb, _) in zip(gts, colorize_frames(lumas, model, size=size, recurrence=recurrence, keys=keys))
            )
        else:
            pred_clip = _prediction_clip(Path(predictions), data, clip)
            pairs = _paired(clip, read_clip(clip, max_frames), read_clip(pred_clip, max_frames))
        count = 0
        for gt, pred in pairs:
            step = ref.step(gt)
            gray = np.repeat(rgb_to_gray(gt)[..., None], 3, -1)
            scorers[method].add(pred, gt, step)
            scorers[GRAY_ROW].add(gray, gt, step)
            scorers[GT_ROW].add(gt, gt, step)
            count += 1
        if count == 0:
            raise VcganError(f"clip {clip.name!r} has no frames")
        for r, s in scorers.items():
            rows[r]["clips"][clip.name] = s.summary()
        if references and "psnr" in metrics:
            rows[method]["clips"][clip.name].update(psnr_by_position(scorers[method].psnr))
    for r in rows.values():
        r["mean"] = _mean_over_clips(r["clips"])
    return {"method": method, "clips": [c.name for c in clips], "metrics": list(metrics), "rows": rows}


def _paired(clip: Clip, gts: Iterator[np.ndarray], preds: Iterator[np.ndarray]):
    """(ground truth, prediction) pairs; predictions at another size are resized to the
    ground truth's (bicubic), a different frame count is an error."""
    for gt, pred in itertools.zip_longest(gts, preds):
        if gt is None or pred is None:
            raise VcganError(f"clip {clip.name!r}: predictions and ground truth differ in frame count")
        if pred.shape != gt.shape:
            pred = cv2.resize(pred, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_CUBIC).clip(0, 1)
        yield gt, pred


#: The parts of a clip whose PSNR ``references="first"`` reports: frames [0, n/4), [n/4, 3n/4), [3n/4, n).
POSITIONS = ("psnr-first-quarter", "psnr-middle", "psnr-last-quarter")


def psnr_by_position(values: list[float]) -> dict[str, float | None]:
    """Mean PSNR over a clip's first quarter, middle half and last quarter of frames."""
    n = len(values)
    cuts = (0, -(-n // 4), n - n // 4, n)
    out = {}
    for name, a, b in zip(POSITIONS, cuts, cuts[1:]):
        out[name] = float(np.mean(values[a:b])) if b > a else None
    return out


def _mean_over_clips(clips: dict[str, dict]) -> dict:
    keys = {k for s in clips.values() for k in s}
    out = {}
    for k in sorted(keys):
        vals = [s[k] for s in clips.values() if s.get(k) is not None]
        out[k] = (sum(vals) if k == "frames" else float(np.mean(vals))) if vals else None
    return out


def _clip_to_video(clip: Clip, path: Path, max_frames: int) -> None:
    """Encode a clip's frames as a grayscale H.264 film (the input a user would give)."""
    import av

    with av.open(str(path), "w") as out:
        stream = None
        for i, rgb in enumerate(read_clip(clip, max_frames)):
            gray = (rgb_to_gray(rgb) * 255 + 0.5).astype(np.uint8)
            h, w = gray.shape[0] & ~1, gray.shape[1] & ~1
            if stream is None:
                stream = out.add_stream("libx264", rate=25, options={"crf": "12", "preset": "veryfast"})
                stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(gray[:h, :w]), format="gray").reformat(
                format="yuv420p"
            )
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


class _PeakMemory:
    """Samples this process's resident memory in a thread (Linux /proc), reporting the peak."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def rss() -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            self._stop.wait(self.interval)

    def __enter__(self):
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


def _median_ms(times: list[float]) -> float:
    return 1000.0 * statistics.median(times) if times else float("nan")


def measure_speed(
    data: str | os.PathLike,
    model: Colorizer,
    *,
    sizes: tuple[int, ...] = (),
    frames: int = 48,
    repeats: int = 3,
    warmup: int = 3,
    codec: str = "libx264",
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Per-stage and end-to-end speed of colourising the first clip (or video) of ``data``.

    Each stage is timed on its own over the same ``frames`` frames, ``repeats`` times; the
    per-frame median is reported (network: after ``warmup`` frames). End to end runs the real
    :func:`~vcgan_cli.pipeline.colorize_video` (stages overlapping in threads) ``repeats``
    times, reporting the median frames per second and the peak resident memory.
    """
    import torch

    from .flow import SceneCutDetector
    from .media import Frame, MediaReader, VideoWriter
    from .models import count_macs, count_parameters
    from .pipeline import Recurrence, colorize_video
    from .runtime import working_size

    clip = find_clips(data)[0]
    sizes = sizes or (model.config.train_size,)
    cuda = model.device.type == "cuda"
    results = []
    with tempfile.TemporaryDirectory(prefix="vcgan-bench-") as tmp:
        # always a short grayscale film of `frames` frames, so every stage (and end to end)
        # times the same frames, however long the source is
        src = Path(tmp) / "input.mp4"
        _clip_to_video(clip, src, frames)
        # decode
        decode_fps = []
        for _ in range(repeats):
            lumas: list[np.ndarray] = []
            t0 = time.perf_counter()
            with MediaReader(src) as reader:
                info = reader.info
                for item in reader.demux():
                    if isinstance(item, Frame):
                        lumas.append(item.luma)
                        if len(lumas) >= frames:
                            break
            decode_fps.append(len(lumas) / (time.perf_counter() - t0))
        for size in sizes:
            if progress:
                progress(f"speed at short side {size}")
            wh, ww = working_size(info.height, info.width, size)
            flow_t, net_t, enc_fps, e2e_fps, peaks, gpu_peaks = [], [], [], [], [], []
            for _ in range(repeats):
                rec, rgbs = Recurrence(model, wh, ww, detector=SceneCutDetector()), []
                for i, luma in enumerate(lumas):
                    t0 = time.perf_counter()
                    step = rec.prepare(luma)
                    rec.track(step)
                    t1 = time.perf_counter()
                    rgb, _ = rec.colour(step)  # returns on the host: synchronised
                    t2 = time.perf_counter()
                    flow_t.append(t1 - t0)
                    if i >= warmup:
                        net_t.append(t2 - t1)
                    rgbs.append(rgb)
                out = Path(tmp) / "encode.mkv"
                with MediaReader(src) as reader, VideoWriter(out, reader, codec=codec, overwrite=True) as writer:
                    from .colour import rgb_to_ycbcr

                    t0 = time.perf_counter()
                    for i, (luma, rgb) in enumerate(zip(lumas, rgbs)):
                        _, cb, cr = rgb_to_ycbcr(rgb, info.matrix)
                        writer.write_frame(i, luma, cb, cr)
                    writer.commit()
                    enc_fps.append(len(lumas) / (time.perf_counter() - t0))
                del rgbs
                if cuda:
                    torch.cuda.reset_peak_memory_stats(model.device)
                with _PeakMemory() as mem:
                    result = colorize_video(src, Path(tmp) / "e2e.mp4", model=model, size=size, codec=codec, overwrite=True)
                peaks.append(mem.peak)
                e2e_fps.append(result.fps)
                if cuda:
                    gpu_peaks.append(torch.cuda.max_memory_allocated(model.device))
            padded = (max(128, -(-wh // 64) * 64), max(128, -(-ww // 64) * 64))
            results.append(
                {
                    "short_side": size,
                    "input_size": [info.height, info.width],
                    "working_size": [wh, ww],
                    "network_size": list(padded),
                    "frames": len(lumas),
                    "decode_fps": statistics.median(decode_fps),
                    "flow_ms": _median_ms(flow_t),
                    "network_ms": _median_ms(net_t),
                    "encode_fps": statistics.median(enc_fps),
                    "end_to_end_fps": statistics.median(e2e_fps),
                    "peak_host_mb": max(peaks) / 2**20,
                    "peak_gpu_mb": max(gpu_peaks) / 2**20 if gpu_peaks else None,
                    "gmacs_per_frame": count_macs(model.weights.generator, *padded) / 1e9,
                }
            )
            r = results[-1]
            # each stage's time per frame as a share of the end-to-end time per frame: the
            # stages run in parallel threads, so the shares can add up to more than 100 %
            per_frame = 1000.0 / r["end_to_end_fps"] if r["end_to_end_fps"] else float("nan")
            r["stage_share"] = {
                "decode": 1000.0 / r["decode_fps"] / per_frame if r["decode_fps"] else None,
                "flow": r["flow_ms"] / per_frame,
                "network": r["network_ms"] / per_frame,
                "encode": 1000.0 / r["encode_fps"] / per_frame if r["encode_fps"] else None,
            }
    return {
        "clip": clip.name,
        "parameters": count_parameters(model.weights.generator),
        "gmacs_256x512": count_macs(model.weights.generator, 256, 512) / 1e9,
        "repeats": repeats,
        "warmup_frames": warmup,
        "codec": codec,
        "sizes": results,
    }


def measure_preview(
    data: str | os.PathLike,
    model: Colorizer,
    *,
    size: int | None = None,
    frames: int = 12,
    repeats: int = 3,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """How long a contact sheet (:func:`~vcgan_cli.pipeline.preview_film`) takes against a
    full colourise (:func:`~vcgan_cli.pipeline.colorize_video`) of the same film, with the
    same model and working size, in this run: the median of ``repeats`` runs each, and their
    ratio. ``data``: a video file as it is (sound and all), or a clip tree's first clip
    encoded as a grayscale film."""
    from .pipeline import colorize_video, preview_film

    src = Path(data)
    with tempfile.TemporaryDirectory(prefix="vcgan-bench-") as tmp:
        if not (src.is_file() and src.suffix.lower() in VIDEO_EXTENSIONS):
            clip = find_clips(data)[0]
            src = Path(tmp) / "input.mp4"
            _clip_to_video(clip, src, 10**9)
        full, sheet, count = [], [], 0
        for k in range(repeats):
            if progress:
                progress(f"preview against colourise, run {k + 1}/{repeats}")
            t0 = time.perf_counter()
            result = colorize_video(src, Path(tmp) / "full.mp4", model=model, size=size, overwrite=True)
            full.append(time.perf_counter() - t0)
            count = result.frames
            t0 = time.perf_counter()
            preview_film(src, Path(tmp) / "sheet.png", model=model, size=size, frames=frames, overwrite=True)
            sheet.append(time.perf_counter() - t0)
    full_s, sheet_s = statistics.median(full), statistics.median(sheet)
    return {"film": str(data), "film_frames": count, "sheet_frames": frames, "repeats": repeats,
            "colorize_s": full_s, "preview_s": sheet_s, "ratio": sheet_s / full_s}


def environment(model: Colorizer | None) -> dict:
    """Versions and hardware, so results can be compared later."""
    from importlib.metadata import version

    import torch

    def ver(name):
        try:
            return version(name)
        except Exception:  # noqa: BLE001
            return None

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    env = {
        "vcgan": ver("vcgan"),
        "torch": torch.__version__,
        "av": ver("av"),
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    if model is not None:
        env.update(model=model.name, model_source=model.source, device=str(model.device), precision=model.precision,
                   backend=model.backend)
    return env
