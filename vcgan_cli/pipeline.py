"""Colourise films and photos: the library API behind ``vcgan colorize`` and ``vcgan image``.

Video runs as a small pipeline of threads joined by bounded queues, so memory stays flat
however long the film is, and decoding, optical flow and encoding overlap with the network:

    decode + resize ─▶ flow + scene cuts ─▶ network (recurrent) ─▶ encode + mux
        (thread)           (thread)          (calling thread)         (thread)

Audio packets travel through the same queues, so the muxer receives them in file order.
"""
from __future__ import annotations

import math
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import files
from .colour import rgb_to_gray, rgb_to_ycbcr
from .errors import Interrupted, VcganError
from .flow import SceneCutDetector, estimate_flow, to_u8, warp
from .keyframes import KeyFrames
from .media import AudioPacket, Frame, MediaReader, OutputPlan, VideoWriter
from .partial import SEGMENT_SECONDS, Partial, PartialError, SegmentEncoder, input_identity, partial_dir
from .runtime import Colorizer, load_model, resize, working_size

#: Input chroma (Frame.chroma) above which a film is taken to be in colour already.
COLOUR_INPUT_CHROMA = 0.02
_END = object()


@dataclass
class Progress:
    """What a progress callback receives after each frame is written."""

    frames_done: int
    frames_total: int | None
    shots: int
    elapsed: float
    #: Frames done by an earlier run and resumed from (not counted in this run's speed).
    frames_resumed: int = 0


@dataclass
class VideoResult:
    input: str
    output: str
    frames: int
    duration: float | None
    #: Frame indices where the recurrence (re)started: 0 and every detected scene cut.
    shot_starts: list[int]
    working_size: tuple[int, int]
    model: str
    model_source: str
    device: str
    precision: str
    elapsed: float
    output_info: str
    warnings: list[str] = field(default_factory=list)
    #: Frames that could not be decoded, each written as the previous good picture again.
    damaged_frames: list[int] = field(default_factory=list)
    backend: str = "torch"  # how the network ran (backends.py)
    #: The frame this run resumed from (saved work of an interrupted run), else None.
    resumed_from: int | None = None
    recurrence: str = "gray"
    #: The key frames used: file, frame (counted from the output's first), film_frame (its
    #: name's index; None for --reference), shot (from 1) and that shot's first frame.
    references: list[dict] = field(default_factory=list)

    @property
    def fps(self) -> float:
        """Frames this run coloured per second (those of an earlier run resumed from not counted)."""
        return (self.frames - (self.resumed_from or 0)) / self.elapsed if self.elapsed > 0 else 0.0

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["fps"] = self.fps
        return d


@dataclass
class Step:
    """One frame on its way through the :class:`Recurrence`."""

    frame: Frame | None
    gray: np.ndarray  # working size, [0, 1]
    gray_u8: np.ndarray
    flow: np.ndarray | None = None  # backward flow to the previous frame; None = new shot
    context: bool = False  # done by an earlier run: only the next frame's flow reference
    recent: list[float] | None = None  # the scene-cut detector's scores after this frame
    key: np.ndarray | None = None  # a user's key frame for this frame (RGB at working size)


def parse_position(text: str | float | int, what: str = "--start") -> tuple[str, float]:
    """A place in a film: seconds (``90``, ``1.5``), ``[HH:]MM:SS[.mmm]``, or a frame number
    ``f1234`` (counted from 0). Returns ("s", seconds) or ("f", frame)."""
    if isinstance(text, (int, float)):
        value = float(text)
        kind = "s"
    else:
        t = str(text).strip().lower()
        try:
            if t.startswith("f"):
                kind, value = "f", float(int(t[1:]))
            elif ":" in t:
                parts = t.split(":")
                if len(parts) > 3 or any(not p for p in parts):
                    raise ValueError
                kind, value = "s", 0.0
                for p in parts:
                    value = value * 60 + float(p)
                if any(float(p) >= 60 for p in parts[1:-1]) or float(parts[-1]) >= 60 and len(parts) > 1:
                    raise ValueError
            else:
                kind, value = "s", float(t.rstrip("s"))
        except ValueError:
            raise VcganError(f"{what} {text!r}: give seconds (90, 1.5), HH:MM:SS.mmm or a frame number (f1234)") from None
    if not math.isfinite(value) or value < 0:
        raise VcganError(f"{what} {text!r} must be a time or frame at or after the start")
    return kind, value


def excerpt_window(info, start, end) -> tuple[float, float | None] | None:
    """(start, end) seconds on the frames' clock for ``start``/``end`` positions (see
    :func:`parse_position`; frame numbers through the film's frame rate), or None for the
    whole film."""
    if start is None and end is None:
        return None

    def seconds(pos, what):
        kind, value = parse_position(pos, what)
        if kind == "f":
            if not info.average_rate:
                raise VcganError(f"{what} f{int(value)}: the film has no frame rate to count frames by; give a time")
            return value / float(info.average_rate)
        return value

    a = seconds(start, "--start") if start is not None else 0.0
    b = seconds(end, "--end") if end is not None else None
    if b is not None and b <= a:
        raise VcganError(f"--end ({b:.3f} s) must come after --start ({a:.3f} s)")
    if info.duration and a >= info.duration:
        raise VcganError(f"--start {a:.3f} s is past the end of the film ({info.duration:.3f} s)")
    return info.start_time + a, None if b is None else info.start_time + b


def _packet_time(item: AudioPacket) -> float | None:
    p = item.packet
    return float(p.pts * p.time_base) if p.pts is not None and p.time_base is not None else None


class Recurrence:
    """VCGAN's recurrence over one film, the one place it is written. Its two halves may run
    in different threads, each keeping its own state:

    - :meth:`track` (the flow half): the backward flow from a step to the step tracked
      before it, unless a scene cut (or the first frame) starts a new shot;
    - :meth:`colour` (the network half): ``G(x, x)`` at a shot's first frame, else
      ``G(x_t, W(O_{t→t-1}, gray(s_{t-1})))`` with ``s_{t-1}`` the previous output (``mode``
      "gray", the paper's), or ``G(x_t, W(O_{t→t-1}, s_{t-1}))`` (``mode`` "colour": the warped
      colour output itself, for a model trained for it). A step with a ``key`` (a user's key
      frame) takes the key's chroma on its own luma instead of the network's guess, and the
      rest of its shot runs the colour recurrence from it, whatever ``mode`` says.

    ``detector`` None: no cut detection (only the first frame starts a shot). ``state``
    (the previous output), ``recent`` (the detector's scores) and ``keyed`` (a key frame
    came earlier in the shot) continue saved work."""

    def __init__(self, model: Colorizer | None, height: int, width: int, *, detector: SceneCutDetector | None = None,
                 state: np.ndarray | None = None, recent: list[float] | None = None, mode: str = "gray",
                 keyed: bool = False):
        self.model = model
        self.height, self.width = height, width
        self.detector = detector
        if detector is not None and recent is not None:
            detector.recent.extend(recent)
        self._prev: Step | None = None  # the flow half's previous step
        self.state = state  # the network half's previous output
        self.mode = mode
        self.keyed = keyed  # this shot had a key frame: its colour is carried

    def prepare(self, luma: np.ndarray) -> Step:
        """A frame's luma at the working size, as the two halves take it."""
        gray = np.clip(resize(luma, self.height, self.width), 0.0, 1.0)
        return Step(None, gray, to_u8(gray))

    def track(self, step: Step) -> None:
        """Flow from ``step`` back to the previous step, unless this is a first frame or a cut."""
        prev = self._prev
        if prev is not None:
            flow = estimate_flow(prev.gray_u8, step.gray_u8)
            if self.detector is None or not self.detector.is_cut(prev.gray_u8, step.gray_u8, flow):
                step.flow = flow
        step.recent = None if self.detector is None else list(self.detector.recent)
        self._prev = step

    def reference(self, step: Step) -> None:
        """A frame done before (saved work): only the next step's flow reference."""
        self._prev = step

    def colour(self, step: Step) -> tuple[np.ndarray, bool]:
        """One recurrent step; returns the output (RGB at the working size) and whether a
        shot starts here."""
        from .keyframes import on_luma

        start = step.flow is None or self.state is None
        if start:
            self.keyed = False
        if step.key is not None:
            self.state = on_luma(step.key, step.gray)
            self.keyed = True
        elif start:
            self.state = self.model(step.gray, step.gray)  # G(x, x) in either recurrence, as trained
        elif self.keyed:
            self.state = self.model(step.gray, warp(self.state, step.flow), keyed=True)
        elif self.mode == "colour":
            self.state = self.model(step.gray, warp(self.state, step.flow))
        else:
            self.state = self.model(step.gray, warp(rgb_to_gray(self.state), step.flow))
        return self.state, start


def compose(luma: np.ndarray, rgb: np.ndarray, matrix: str = "bt601") -> np.ndarray:
    """Full-resolution RGB from the source's own ``luma`` and the chroma of ``rgb`` (any
    size with the same aspect), scaled up."""
    from .colour import ycbcr_to_rgb

    h, w = luma.shape
    _, cb, cr = rgb_to_ycbcr(rgb, matrix)
    return ycbcr_to_rgb(luma, resize(cb, h, w), resize(cr, h, w), matrix)


def compose_bgr(luma: np.ndarray, rgb: np.ndarray, scale: float, dtype, matrix: str = "bt601") -> np.ndarray:
    """:func:`compose`, straight to integer BGR (``scale``: 255 or 65535) in strips of rows:
    for a large photo only the two scaled-up chroma planes and the output exist at full
    resolution, never a float RGB copy (the same pixels as ``compose`` then conversion)."""
    from .colour import ycbcr_to_rgb
    from .images import STRIP_ROWS

    h, w = luma.shape
    _, cb, cr = rgb_to_ycbcr(rgb, matrix)
    cb, cr = resize(cb, h, w), resize(cr, h, w)
    out = np.empty((h, w, 3), dtype)
    for r in range(0, h, STRIP_ROWS):
        s = slice(r, r + STRIP_ROWS)
        out[s] = ycbcr_to_rgb(luma[s], cb[s], cr[s], matrix)[..., ::-1] * scale + 0.5
    return out


def colorize_frames(
    lumas,
    model: Colorizer,
    *,
    size: int | None = None,
    detect_cuts: bool = True,
    cut_sensitivity: float = 1.0,
    recurrence: str = "gray",
    keys: dict[int, np.ndarray] | None = None,
):
    """Recurrent colourisation of a sequence of grayscale frames ((H, W) in [0, 1]), one at a
    time, exactly as :func:`colorize_video` does it. Yields ``(rgb, shot_start)`` with ``rgb``
    at the working size; :func:`compose` puts it back on the full-resolution luma.
    ``recurrence``: "gray" (the paper's) or "colour"; ``keys``: key frames by frame index
    (RGB in [0, 1] of the frames' aspect, any size)."""
    size = size or model.config.train_size
    model.check_recurrence(recurrence, bool(keys))
    rec: Recurrence | None = None
    for t, luma in enumerate(lumas):
        shape = working_size(*luma.shape, size)
        if rec is None or (rec.height, rec.width) != shape:  # a size change starts a new shot
            rec = Recurrence(model, *shape, detector=SceneCutDetector(cut_sensitivity) if detect_cuts else None,
                             mode=recurrence)
        step = rec.prepare(luma)
        if keys and t in keys:
            step.key = np.clip(resize(keys[t].astype(np.float32), *shape), 0.0, 1.0)
        rec.track(step)
        yield rec.colour(step)


class _Stage:
    """Runs ``fn`` in a thread; errors are kept for the caller and stop everything."""

    def __init__(self, name: str, fn: Callable[[], None], stop: threading.Event, errors: list[BaseException]):
        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
                errors.append(exc)
                stop.set()

        self.thread = threading.Thread(target=run, name=f"vcgan-{name}", daemon=True)


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, stop: threading.Event):
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                return _END


def _duration(span: list[float | None], frames: int, rate) -> float | None:
    """Seconds covered by the written frames (last minus first timestamp plus one frame)."""
    if span[0] is None:
        return None
    one = 1.0 / float(rate) if rate else (span[1] - span[0]) / max(frames - 1, 1)
    return span[1] - span[0] + one


def _resolve_model(model: Colorizer | str | os.PathLike | None, device: str, precision: str) -> Colorizer:
    return model if isinstance(model, Colorizer) else load_model(model, device=device, precision=precision)


class StopRequest:
    """A graceful stop asked from outside a run (a signal handler, another thread): the run
    stops after the frame in progress, saves its work beside the output and raises
    :class:`~vcgan_cli.errors.Interrupted`. Only while a run listens (``armed``) is a
    request taken; otherwise, or when one was already made (a second Ctrl-C),
    :meth:`request` returns False and the caller should interrupt at once."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signum: int | None = None
        self.armed = False

    def request(self, signum: int | None = None) -> bool:
        if not self.armed or self._event.is_set():
            return False
        self.signum = signum
        self._event.set()
        return True

    @property
    def requested(self) -> bool:
        return self._event.is_set()


def _signal_name(signum: int | None) -> str:
    import signal

    if signum is None:
        return "request"
    try:
        return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _open_partial(dst, identity: dict, settings: dict, resume: bool, warnings: list[str]) -> tuple[Partial, bool]:
    """The work in progress for ``dst``: resumed (``resume`` and a matching one exists), or
    a new one. An existing one is never deleted or reused silently."""
    folder = partial_dir(dst)
    if folder.exists():
        if not resume:
            try:
                what = f" ({Partial.load(folder).describe()})"
            except PartialError:
                what = ""
            raise PartialError(
                f"{folder} holds an unfinished run of {dst}{what}; continue it with --resume, "
                "or remove that folder to start over"
            )
        part = Partial.load(folder)
        part.lock()
        diffs = part.differences(identity, settings)
        if diffs:
            part.release()
            raise PartialError(
                f"cannot resume {dst}: {'; '.join(diffs)}; resume with the settings it was started with, "
                f"or remove {folder} to start over"
            )
        part.tidy()
        return part, True
    if resume:
        warnings.append(f"nothing to resume for {dst} (no {folder.name}); started from the beginning")
    problem = files.folder_problem(folder.parent)
    if problem:
        raise VcganError(f"cannot keep work in progress beside {dst}: {problem}")
    folder.mkdir()
    part = Partial(folder, identity, settings)
    part.lock()
    part.save()
    return part, False


def _assemble(part: Partial, reader: MediaReader, plan: OutputPlan) -> str:
    """The final file from the saved segments' packets and the input's sound, interleaved
    by time, written atomically. Returns the writer's summary line."""
    window = plan.window
    tb = plan.time_base
    until = window[1] + 1.0 if window is not None and window[1] is not None else None
    with VideoWriter(plan.path, reader, plan=plan) as writer:
        audio = reader.audio_packets(seek=window[0] if window else None, until=until)
        pending = next(audio, None)
        for packet in part.packets():
            at = packet.dts if packet.dts is not None else packet.pts
            t = float((at + plan.shift) * tb)
            while pending is not None and ((pt := _packet_time(pending)) is None or pt <= t):
                writer.write_audio(pending)
                pending = next(audio, None)
            writer.write_packet(packet)
        while pending is not None:
            writer.write_audio(pending)
            pending = next(audio, None)
        writer.commit()
        return writer.output_info


def colorize_video(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    model: Colorizer | str | os.PathLike | None = None,
    size: int | None = None,
    keep_luma: bool = True,
    codec: str = "libx264",
    crf: int | None = None,
    overwrite: bool = False,
    detect_cuts: bool = True,
    cut_sensitivity: float = 1.0,
    device: str = "auto",
    precision: str = "auto",
    progress: Callable[[Progress], None] | None = None,
    queue_size: int = 4,
    strict: bool = False,
    start: str | float | None = None,
    end: str | float | None = None,
    resume: bool = False,
    stop: StopRequest | None = None,
    segment_seconds: float | None = None,
    recurrence: str = "gray",
    references: KeyFrames | None = None,
) -> VideoResult:
    """Colourise the film ``src`` into ``dst``, with its sound, frame for frame.

    The first frame of every shot is ``G(x, x)``; each later frame is ``G(x_t, i_t)`` with
    ``i_t`` the previous output in grayscale, warped onto frame t by optical flow between the
    two grayscale inputs. With ``keep_luma`` the output keeps the film's own full-resolution
    luminance and takes only chroma from the network; otherwise the network's RGB is written.
    ``dst`` appears only when everything succeeded. A picture that cannot be decoded is
    replaced by the previous good one (named in ``warnings`` and ``damaged_frames``); with
    ``strict`` any damage raises :class:`~vcgan_cli.errors.DamagedMediaError` instead.
    ``start``/``end`` (:func:`parse_position`) colourise only that excerpt, its first frame
    starting a shot, with the sound cut to the sample; the output starts at 0 there.

    The work is saved as it goes in ``dst.partial/`` (partial.py; every ``segment_seconds``,
    default :data:`~vcgan_cli.partial.SEGMENT_SECONDS`). ``stop`` (a :class:`StopRequest`)
    ends the run after the frame in progress, saving it, with
    :class:`~vcgan_cli.errors.Interrupted`; ``resume`` continues saved work, giving the
    same film as an uninterrupted run (the same frames, bit for bit with ffv1). Saved work
    of other settings, another model or another input is refused, and without ``resume``
    existing work is refused too (never deleted).

    ``recurrence`` "colour" feeds the placeholder extractor the warped previous *colour*
    output instead of its grayscale (a model trained for it; docs/method.md). ``references``
    (:class:`~vcgan_cli.keyframes.KeyFrames`) set the colours of their frames, carried
    through the rest of each one's shot; they are checked against the film before any work.
    """
    started = time.perf_counter()
    colorizer = _resolve_model(model, device, precision)
    colorizer.check_recurrence(recurrence, bool(references))
    size = size or colorizer.config.train_size
    every = SEGMENT_SECONDS if segment_seconds is None else float(segment_seconds)

    with MediaReader(src, strict=strict) as reader:
        info = reader.info
        wh, ww = working_size(info.height, info.width, size)
        colorizer.check_fits(wh, ww, size)
        window = excerpt_window(info, start, end)
        frames_total = info.frame_count
        if window is not None and info.average_rate:
            last = window[1] if window[1] is not None else info.start_time + (info.duration or 0)
            frames_total = max(1, math.ceil((last - window[0]) * float(info.average_rate) - 1e-6)) if last > window[0] else None
        plan = OutputPlan(dst, reader, codec=codec, crf=crf, overwrite=overwrite, window=window)
        if references:
            references.check(info.width, info.height, info.frame_count)
        from .backends import weights_digest

        settings = {
            "model": colorizer.name, "model_digest": weights_digest(colorizer.weights.generator),
            "precision": colorizer.precision, "size": size, "working_size": f"{ww}x{wh}", "raw": not keep_luma,
            "scene_detect": bool(detect_cuts), "scene_sensitivity": float(cut_sensitivity), "strict": bool(strict),
            "start": None if window is None else round(window[0], 6),
            "end": None if window is None or window[1] is None else round(window[1], 6),
            **plan.settings(),
        }
        if recurrence != "gray":  # named only where not the paper's: saved work from before resumes
            settings["recurrence"] = recurrence
        if references:
            settings["references"] = references.settings()
        warnings: list[str] = [] if not references else references.warnings()
        met: dict[str, int] = {}  # key frame → the (excerpt's) frame index it coloured
        part, resumed = _open_partial(dst, input_identity(src), settings, resume, warnings)
        resume_at = part.next_frame
        ran = not part.complete  # (a resumed run whose frames were all done decodes nothing)
        try:
            if ran:
                _colour_film(reader, colorizer, plan, part, window, (wh, ww), detect_cuts, cut_sensitivity,
                             keep_luma, progress, stop, frames_total, queue_size, every, started, warnings,
                             recurrence, references, met)
                part.damaged, part.notes = list(reader.damaged_frames), list(reader.warnings)
                part.save()
        except BaseException:
            if not part.segments:
                part.remove()  # nothing was saved: no work to resume
            part.release()
            raise
        try:
            output_info = _assemble(part, reader, plan)
        except files.OutputAppearedError:
            part.remove()  # the film is whole, kept beside the file that appeared
            raise
        except BaseException:
            part.release()
            raise
        part.remove()
        warnings.extend(w for w in part.notes if w not in warnings)
        warnings.extend(n for n in colorizer.notes if n not in warnings)

    frames = part.next_frame
    used = []
    if references and ran:
        starts = part.shot_starts
        for k in references.frames:
            if k.label in met:
                at = met[k.label]
                shot = sum(1 for s0 in starts if s0 <= at)
                used.append({"file": str(k.path), "frame": at, "film_frame": k.index, "shot": shot,
                             "shot_start": starts[shot - 1] if shot else 0})
        missed = [k.label for k in references.frames if k.label not in met]
        if missed and window is not None:
            warnings.append(f"key frame(s) {', '.join(missed[:5])}{' …' if len(missed) > 5 else ''} outside the excerpt; not used")
        elif missed:
            warnings.append(f"key frame(s) {', '.join(missed[:5])}{' …' if len(missed) > 5 else ''} for frames past the film's end; not used")
    return VideoResult(
        input=str(src),
        output=str(dst),
        frames=frames,
        duration=_duration([part.first_time, part.last_time], frames, info.average_rate),
        shot_starts=part.shot_starts,
        working_size=(wh, ww),
        model=colorizer.name,
        model_source=colorizer.source,
        device=str(colorizer.device),
        precision=colorizer.precision,
        elapsed=time.perf_counter() - started,
        output_info=output_info,
        warnings=warnings,
        damaged_frames=list(part.damaged),
        backend=colorizer.backend,
        resumed_from=resume_at if resumed else None,
        recurrence=recurrence,
        references=used,
    )


def _colour_film(reader, colorizer, plan, part, window, work_size, detect_cuts, cut_sensitivity, keep_luma,
                 progress, stop_request, frames_total, queue_size, every, started, warnings,
                 recurrence="gray", keys: KeyFrames | None = None, met: dict | None = None) -> None:
    """The frames from ``part.next_frame`` on, through the threads (decode, flow, network,
    encode), into ``part``'s segments; :class:`Interrupted` when ``stop_request`` asks.
    ``met`` receives each key frame's label and the frame index it coloured."""
    info = reader.info
    wh, ww = work_size
    resume_at = part.next_frame
    rec = Recurrence(colorizer, wh, ww, detector=SceneCutDetector(cut_sensitivity) if detect_cuts else None,
                     state=part.load_state() if resume_at > 0 else None, recent=part.recent, mode=recurrence)
    # the shot the saved work stopped in: a key frame in it before the stop is still carried
    shot_from = max([s0 for s0 in part.shot_starts if s0 < resume_at], default=0)
    met = {} if met is None else met
    rate = float(info.average_rate) if info.average_rate else None

    def key_for(item: Frame, film_index: int):
        if keys is None:
            return None
        if item.index == 0 and keys.first is not None:
            return keys.first
        if window is not None:  # after a seek the decoder counts from there: the frame number by time
            if rate is None:
                return None
            film_index = round((item.time - info.start_time) * rate)
        return keys.by_index.get(film_index)
    stop = threading.Event()
    errors: list[BaseException] = []
    decoded: queue.Queue = queue.Queue(queue_size)
    flowed: queue.Queue = queue.Queue(queue_size)
    coloured: queue.Queue = queue.Queue(queue_size)
    done = [resume_at]
    interrupted = [False]
    tol = min(1e-3, 0.25 / float(info.average_rate)) if info.average_rate else 1e-3

    def decode() -> None:
        checked = kept = 0
        for item in reader.demux(seek=window[0] if window else None):
            if not isinstance(item, Frame):
                continue  # the sound goes into the file at the end (_assemble)
            film_index = item.index
            if window is not None:
                if item.time < window[0] - tol:
                    continue
                if window[1] is not None and item.time >= window[1] - tol:
                    break
                item.index = kept  # frames count from the excerpt's start
                kept += 1
            if checked < 10:
                checked += 1
                if item.chroma > COLOUR_INPUT_CHROMA and not any("colour" in w for w in warnings):
                    warnings.append("the input looks like a colour film; its colours are discarded and replaced")
            key = key_for(item, film_index)
            if key is not None:
                met[key.label] = item.index
                if item.index < resume_at and item.index >= shot_from:
                    rec.keyed = True  # done before, in the shot the work stopped in (read before any frame to do)
            if item.index < resume_at - 1:
                continue  # done in an earlier run; the frame before the first to do is the flow's reference
            work = rec.prepare(item.luma)
            work.frame, work.context = item, item.index < resume_at
            if key is not None and not work.context:
                work.key = keys.rgb(key, wh, ww)
            if not _put(decoded, work, stop):
                return
        _put(decoded, _END, stop)

    def track() -> None:
        while (item := _get(decoded, stop)) is not _END:
            if item.context:
                rec.reference(item)
            else:
                rec.track(item)
            if not _put(flowed, item, stop):
                return
        _put(flowed, _END, stop)

    def encode() -> None:
        seg = None
        first = 0
        shots: list[int] = []
        last = None  # (rgb, detector scores, frame time) of the last frame written
        span: list[float | None] = [None, None]

        def save(complete: bool) -> None:
            part.add_segment(seg, first, shots, last[0], last[1], span[0], span[1], complete)

        try:
            while (item := _get(coloured, stop)) is not _END:
                frame, rgb, shot_start, recent = item
                if seg is not None:
                    age = time.monotonic() - seg.opened
                    if age >= every or (shot_start and age >= every / 2):
                        save(False)
                        seg, span[0] = None, None
                if seg is None:
                    seg, first, shots = SegmentEncoder(plan, part.next_segment_path()), frame.index, []
                if shot_start:
                    shots.append(frame.index)
                if keep_luma:
                    _, cb, cr = rgb_to_ycbcr(rgb, info.matrix)
                    picture = plan.ycbcr_frame(frame.luma, cb, cr)
                else:
                    picture = plan.rgb_frame(rgb)
                seg.write(frame.pts, picture)
                last = (rgb, recent, frame.time)
                span[0] = frame.time if span[0] is None else span[0]
                span[1] = frame.time
                done[0] += 1
                if progress is not None:
                    progress(Progress(done[0], frames_total, len(part.shot_starts) + len(shots),
                                      time.perf_counter() - started, resume_at))
            if stop.is_set():  # an error elsewhere: the segment in progress is not kept
                if seg is not None:
                    seg.discard()
                return
            if seg is not None:
                save(not interrupted[0])
            elif not interrupted[0]:
                part.complete = True
                part.save()
        except BaseException:
            if seg is not None:
                seg.discard()
            raise

    stages = [_Stage(n, f, stop, errors) for n, f in (("decode", decode), ("flow", track), ("encode", encode))]
    for s in stages:
        s.thread.start()
    if stop_request is not None:
        stop_request.armed = True
    finished = False
    try:
        while (item := _get(flowed, stop)) is not _END:
            if item.context:
                continue  # the frame before the first to do: its output is the saved state
            if stop_request is not None and stop_request.requested:
                interrupted[0] = True
                break
            rgb, shot_start = rec.colour(item)
            if not _put(coloured, (item.frame, rgb, shot_start, item.recent), stop):
                break
        finished = _put(coloured, _END, stop)
        if finished:
            stages[2].thread.join()  # the frames already coloured are encoded and saved
    finally:
        if stop_request is not None:
            stop_request.armed = False
        stop.set()  # the decoder and the flow may still be reading ahead
        for s in stages:
            s.thread.join()
    if errors:
        raise errors[0]
    if interrupted[0] or not finished:
        signum = stop_request.signum if stop_request is not None else None
        total = f" of {frames_total}" if frames_total else ""
        if part.next_frame == 0:
            where = "before any frame was done; nothing was kept"
        else:
            where = f"after {part.next_frame}{total} frames; the work so far is kept in {part.folder}"
        raise Interrupted(f"stopped by {_signal_name(signum)} {where}", signum=signum,
                          partial=str(part.folder) if part.next_frame else None,
                          frames_done=part.next_frame, frames_total=frames_total)
    if part.next_frame == 0:
        raise VcganError(f"{reader.path}: no video frames could be decoded")


@dataclass
class ImageResult:
    input: str
    output: str
    size: tuple[int, int]
    working_size: tuple[int, int]
    warnings: list[str] = field(default_factory=list)


def image_output_path(src: Path, out: Path | None, many: bool) -> Path:
    """Where ``vcgan image`` writes ``src``: next to it as ``NAME_color.EXT`` by default, in
    ``out`` if it is a folder (or several inputs were given), else ``out`` itself."""
    if out is None:
        return src.with_name(f"{src.stem}_color{src.suffix}")
    if many or out.is_dir() or str(out).endswith(("/", os.sep)):
        return out / src.name
    return out


def colorize_image(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    model: Colorizer | str | os.PathLike | None = None,
    size: int | None = None,
    keep_luma: bool = True,
    overwrite: bool = False,
    device: str = "auto",
    precision: str = "auto",
) -> ImageResult:
    """Colourise one photo in image mode (the placeholder extractor sees the photo itself),
    keeping its size, bit depth, alpha and, by default, its own luminance."""
    from .images import output_format, read_image, write_image

    src, dst = Path(src), Path(dst)
    if dst.exists() and src.exists() and os.path.samefile(src, dst):
        raise VcganError(f"{dst} is the input itself; choose another output name")
    if dst.exists() and not overwrite:
        raise VcganError(f"{dst} exists; pass --overwrite to replace it")
    problem = files.target_problem(dst)
    if problem:
        raise VcganError(f"cannot write {dst}: {problem}")
    colorizer = _resolve_model(model, device, precision)
    still = read_image(src)
    warnings = list(still.warnings)
    if still.chroma > COLOUR_INPUT_CHROMA:
        warnings.append(f"{src} looks like a colour photo; its colours are discarded and replaced")
    h, w = still.luma.shape
    wh, ww = working_size(h, w, size or colorizer.config.train_size)
    colorizer.check_fits(wh, ww, size or colorizer.config.train_size)
    gray = np.clip(resize(still.luma, wh, ww), 0.0, 1.0)
    rgb = colorizer(gray, gray)
    if keep_luma:
        out = compose_bgr(still.luma, rgb, *output_format(dst, still.bit_depth))
    else:
        out = np.clip(resize(rgb, h, w), 0.0, 1.0)
    write_image(dst, out, bit_depth=still.bit_depth, alpha=still.alpha, overwrite=overwrite)
    return ImageResult(str(src), str(dst), (h, w), (wh, ww), warnings)


# --------------------------------------------------------------------------- preview

#: Short side at which a preview looks for scene cuts (a sixteenth of the flow's pixels at 256; the same
#: cuts as at 256 on the sample, the bw-footage film and six train-videos clips, in about half the time of 128).
PREVIEW_CUT_SIZE = 64


@dataclass
class PreviewResult:
    input: str
    output: str
    frames_total: int  # frames decoded (the whole film)
    picked: list[tuple[int, float, int]]  # (frame index, time in s, shot number from 1) per tile
    cuts: list[float]  # times (s) where a new shot starts, the first excepted
    working_size: tuple[int, int]
    model: str
    elapsed: float
    warnings: list[str] = field(default_factory=list)


def _timecode(t: float) -> str:
    h, rest = divmod(max(t, 0.0), 3600)
    m, s = divmod(rest, 60)
    return f"{int(h)}:{int(m):02d}:{s:04.1f}"


def preview_film(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    model: Colorizer | str | os.PathLike | None = None,
    frames: int = 12,
    size: int | None = None,
    tile_width: int = 320,
    detect_cuts: bool = True,
    cut_sensitivity: float = 1.0,
    overwrite: bool = False,
    device: str = "auto",
    precision: str = "auto",
    progress: Callable[[Progress], None] | None = None,
) -> PreviewResult:
    """A contact sheet of ``frames`` frames spread evenly over the film: each grayscale frame
    beside its colourisation, with its time code and shot number, and the film's scene cuts
    listed, so a model or a setting can be judged before hours of work.

    One pass decodes the whole film (cuts are looked for at :data:`PREVIEW_CUT_SIZE`, which is
    cheap); only the picked frames go through the network, each as a shot's first frame
    (``G(x, x)``), so a tile's colours are what the film gets where a shot starts."""
    from .images import write_image

    started = time.perf_counter()
    if not 1 <= frames <= 200:
        raise VcganError(f"--frames {frames}: use 1 to 200")
    dst = Path(dst)
    problem = files.target_problem(dst)
    if problem:
        raise VcganError(f"cannot write {dst}: {problem}")
    if dst.exists() and not overwrite:
        raise VcganError(f"{dst} exists; pass --overwrite to replace it")
    if dst.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"):
        raise VcganError(f"{dst}: a contact sheet is an image; use .png or .jpg")
    colorizer = _resolve_model(model, device, precision)
    size = size or colorizer.config.train_size
    detector = SceneCutDetector(cut_sensitivity) if detect_cuts else None
    with MediaReader(src) as reader:
        if dst.exists() and os.path.samefile(dst, reader.path):
            raise VcganError(f"{dst} is the input itself; choose another output name")
        info = reader.info
        length = info.duration or (info.frame_count / float(info.average_rate) if info.frame_count and info.average_rate else None)
        if not length:
            raise VcganError(f"{src}: the file does not say how long the film is; a preview cannot spread over it")
        first_time = None
        wh, ww = working_size(info.height, info.width, size)
        colorizer.check_fits(wh, ww, size)
        th = max(2, round(tile_width * info.height / info.width))
        ch, cw = working_size(info.height, info.width, PREVIEW_CUT_SIZE)
        targets = [(k + 0.5) * length / frames for k in range(frames)]
        picked: list[tuple[int, float, int, np.ndarray, np.ndarray]] = []
        cuts: list[float] = []
        cuts_only = Recurrence(None, ch, cw, detector=detector)  # its flow half: the shots
        shot = 0
        count = 0
        # decoding and the small pictures in a thread, the cut search here: on two cores the
        # pass costs about the longer of the two (only the picked frames are converted whole)
        stop, errors = threading.Event(), []
        scanned: queue.Queue = queue.Queue(maxsize=32)

        def scan() -> None:
            for item in reader.demux(lazy=True):
                if isinstance(item, Frame) and not _put(scanned, (item, cuts_only.prepare(item.small(ch, cw))), stop):
                    return
            _put(scanned, _END, stop)

        stage = _Stage("scan", scan, stop, errors)
        stage.thread.start()
        try:
            while (got := _get(scanned, stop)) is not _END:
                item, cur = got
                if first_time is None:
                    first_time = item.time
                count += 1
                last = item
                cuts_only.track(cur)
                if cur.flow is None:
                    shot += 1
                    if count > 1:
                        cuts.append(item.time)
                if len(picked) < frames and item.time - first_time >= targets[len(picked)]:
                    gray = np.clip(resize(item.luma, wh, ww), 0.0, 1.0)
                    picked.append((item.index, item.time, shot, gray, np.clip(resize(item.luma, th, tile_width), 0.0, 1.0)))
                if progress is not None and count % 10 == 0:
                    progress(Progress(count, info.frame_count, shot, time.perf_counter() - started))
        finally:
            stop.set()
            stage.thread.join()
        if errors:
            raise errors[0]
        if count and len(picked) < frames:  # a film shorter than it says: the last frame
            if not picked or picked[-1][0] != last.index:
                gray = np.clip(resize(last.luma, wh, ww), 0.0, 1.0)
                picked.append((last.index, last.time, shot, gray, np.clip(resize(last.luma, th, tile_width), 0.0, 1.0)))
        warnings = list(reader.warnings)
    if not picked:
        raise VcganError(f"{src}: no video frames could be decoded")

    # the sheet: a title strip, then rows of (gray | colour) pairs, each with a label strip
    import cv2

    from .colour import ycbcr_to_rgb

    per_row = 2 if tile_width * 4 <= 1600 else 1
    label_h, gap = 22, 8
    pair_w = 2 * tile_width + gap
    width = per_row * pair_w + (per_row + 1) * gap
    rows = -(-len(picked) // per_row)
    title_lines = [
        f"{Path(src).name}: {count} frames, {_timecode(length)}, {shot} shot(s); "
        f"model {colorizer.name}, network at {ww}x{wh}",
        ("cuts at " + ", ".join(f"{t:.1f}" for t in cuts[:14]) + (", ..." if len(cuts) > 14 else "") + " s") if cuts
        else ("no scene cuts found" if detect_cuts else "scene-cut detection off"),
        "left: the film's own gray; right: coloured as a shot's first frame",
    ]
    title_h = 12 + 20 * len(title_lines)
    height = title_h + rows * (label_h + th + gap) + gap
    sheet = np.full((height, width, 3), 30, np.uint8)  # BGR, as write_image takes integers
    font = cv2.FONT_HERSHEY_SIMPLEX
    u8 = lambda a: (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    for n, line in enumerate(title_lines):
        cv2.putText(sheet, line, (gap, 22 + 20 * n), font, 0.5, (240, 240, 240), 1, cv2.LINE_AA)
    for k, (index, t, shot_no, gray, tile_luma) in enumerate(picked):
        with colorizer.few_frames():  # a dozen frames: converting the network would cost more
            rgb = colorizer(gray, gray)
        _, cb, cr = rgb_to_ycbcr(rgb, "bt601")
        colour = np.clip(ycbcr_to_rgb(tile_luma, resize(cb, th, tile_width), resize(cr, th, tile_width), "bt601"), 0, 1)
        r, c = divmod(k, per_row)
        x = gap + c * (pair_w + gap)
        y = title_h + r * (label_h + th + gap)
        cv2.putText(sheet, f"{_timecode(t)}  frame {index}  shot {shot_no}", (x, y + 16), font, 0.5, (100, 215, 240), 1, cv2.LINE_AA)
        sheet[y + label_h : y + label_h + th, x : x + tile_width] = u8(tile_luma)[..., None]
        sheet[y + label_h : y + label_h + th, x + tile_width + gap : x + pair_w] = u8(colour[..., ::-1])
    write_image(dst, sheet, bit_depth=8, alpha=None, overwrite=overwrite)
    return PreviewResult(
        input=str(src), output=str(dst), frames_total=count,
        picked=[(i, round(t, 3), s) for i, t, s, _, _ in picked], cuts=[round(t, 3) for t in cuts],
        working_size=(wh, ww), model=colorizer.name, elapsed=time.perf_counter() - started, warnings=warnings,
    )
