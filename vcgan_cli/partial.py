"""Work in progress of a film, kept beside its output so an interrupted run can resume.

``OUT.partial/`` holds:

- ``manifest.json``: what the work is (the input's identity, the settings and the model's
  digest), the finished segments, and the recurrence's state after the last of them;
- ``seg-NNNNN.vpk``: the encoded video of consecutive frames, as the encoder made it
  (a small packet file of our own: a header line, then per packet its pts, dts, key flag,
  size and bytes; no pickle, nothing executable);
- ``state-NNNNN.npy``: the network's last output (working size, float32), which the next frame's
  placeholder is made from. With the detector's recent scores in the manifest and the
  previous frame decoded again, a resumed run computes exactly what an uninterrupted one
  would, so an ``ffv1`` output is the same bit for bit.

The sound is not kept here: the final file is assembled at the end from the segments'
packets and the input's audio (:func:`vcgan_cli.pipeline.colorize_video`).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from . import files
from .errors import MediaError, VcganError
from .media import OutputPlan, sane_dts

FORMAT = "vcgan-partial"
VERSION = 1
MAGIC = b"VCGANPK1\n"
_RECORD = struct.Struct("<qqBI")  # pts, dts, flags (1 key, 2 no dts), size
_NO_DTS = -(2**63)
LOCK_NAME = "lock"  # held (flock) by the process writing into the folder
#: A segment is closed (and the work up to it saved) after this many seconds of work, or
#: after half of it at the first frame of a new shot. An interruption by a signal or Ctrl-C
#: saves the segment in progress too; a crash loses at most this much.
def _segment_seconds(default: float = 60.0) -> float:
    """VCGAN_SEGMENT_SECONDS where it is a number of seconds (at least 0), else the default."""
    try:
        value = float(os.environ.get("VCGAN_SEGMENT_SECONDS", default))
    except ValueError:
        return default
    return value if value >= 0 else default


SEGMENT_SECONDS = _segment_seconds()


class PartialError(VcganError):
    """Work in progress that cannot be continued (another input, other settings) or is in
    the way of a new run."""


def partial_dir(output: str | os.PathLike) -> Path:
    """``OUT.partial`` beside ``OUT`` (for a name too long to take the suffix, its start and
    a digest of the whole name)."""
    out = Path(os.fspath(output))
    name = out.name + ".partial"
    limit = files.name_max(out.parent if str(out.parent) else ".")
    if len(name.encode()) > limit:
        digest = hashlib.sha256(out.name.encode()).hexdigest()[:12]
        head = out.name.encode()[: limit - len(".partial") - 13].decode(errors="ignore")
        name = f"{head}-{digest}.partial"
    return out.with_name(name)


def input_identity(path: str | os.PathLike) -> dict:
    """The input's size and a digest of its first and last MiB: a changed or another file
    is told apart without reading all of a long film (renaming or moving it is no change)."""
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha256()
    with open(p, "rb") as f:
        h.update(f.read(1 << 20))
        if size > 2 << 20:
            f.seek(size - (1 << 20))
        h.update(f.read(1 << 20))
    return {"bytes": size, "sha256_ends": h.hexdigest()}


# ------------------------------------------------------------------------ packet files


class PacketFile:
    """Append-only file of encoded video packets; written under a temporary name and given
    its own name by :meth:`finish` once complete and on disk."""

    def __init__(self, path: Path, header: dict):
        self.path = path
        self.tmp = files.temp_path(path)
        self.f = open(self.tmp, "wb")
        line = json.dumps(header).encode()
        self.f.write(MAGIC + struct.pack("<I", len(line)) + line)
        self.packets = 0

    def write(self, packet) -> None:
        data = bytes(packet)
        dts = _NO_DTS if packet.dts is None else int(packet.dts)
        flags = (1 if packet.is_keyframe else 0) | (2 if packet.dts is None else 0)
        self.f.write(_RECORD.pack(int(packet.pts), dts, flags, len(data)))
        self.f.write(data)
        self.packets += 1

    def finish(self) -> int:
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        os.replace(self.tmp, self.path)
        files.fsync_folder(self.path.parent)
        return self.path.stat().st_size

    def discard(self) -> None:
        try:
            self.f.close()
        finally:
            files.discard(self.tmp)


def read_packets(path: Path) -> Iterator[av.Packet]:
    """The packets of a segment, in the order they were encoded (decode order)."""
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise PartialError(f"{path} is not a vcgan segment; remove {path.parent} to start over")
        (n,) = struct.unpack("<I", f.read(4))
        f.read(n)
        while True:
            head = f.read(_RECORD.size)
            if not head:
                return
            if len(head) < _RECORD.size:
                raise PartialError(f"{path} is cut short; remove {path.parent} to start over")
            pts, dts, flags, size = _RECORD.unpack(head)
            data = f.read(size)
            if len(data) < size:
                raise PartialError(f"{path} is cut short; remove {path.parent} to start over")
            packet = av.Packet(data)
            packet.pts = pts
            packet.dts = None if flags & 2 else dts
            packet.is_keyframe = bool(flags & 1)
            yield packet


class SegmentEncoder:
    """Encodes frames to an :class:`~vcgan_cli.media.OutputPlan` into one packet file: the
    same encoder, options and codec header the final file's stream gets (a container with
    global headers, as every vcgan container is), so its packets can be muxed there as they
    are."""

    def __init__(self, plan: OutputPlan, path: Path):
        self.plan = plan
        cc = av.CodecContext.create(plan.codec, "w")
        plan.configure(cc)
        cc.options = plan.encoder_options()
        from av.codec.context import Flags

        cc.flags = cc.flags | Flags.global_header
        self.cc = cc
        self.file = PacketFile(path, {"codec": plan.codec, "pix_fmt": plan.pix_fmt})
        self.frames = 0
        self._last_dts: int | None = None
        self.opened = time.monotonic()

    def _put(self, frame) -> None:
        try:
            for packet in self.cc.encode(frame):
                self._last_dts = sane_dts(packet, self._last_dts, self.plan.max_delay)
                self.file.write(packet)
        except av.FFmpegError as e:
            raise MediaError(f"encoding {self.plan.path} failed: {e}") from None

    def write(self, pts: int, picture: av.VideoFrame) -> None:
        self.plan.stamp(picture, int(pts) - self.plan.shift)
        self._put(picture)
        self.frames += 1

    def finish(self) -> int:
        """Flush the encoder and put the segment on disk; returns its size in bytes."""
        self._put(None)
        return self.file.finish()

    def discard(self) -> None:
        self.file.discard()


# ------------------------------------------------------------------------ the manifest


@dataclass
class Segment:
    file: str
    first: int  # index of its first frame
    frames: int
    bytes: int
    shot_starts: list[int]


@dataclass
class Partial:
    """The manifest of ``OUT.partial/`` (see the module's notes)."""

    folder: Path
    input: dict
    settings: dict
    segments: list[Segment] = field(default_factory=list)
    #: The detector's recent scores after the last saved frame (None: no detector).
    recent: list[float] | None = None
    complete: bool = False
    first_time: float | None = None
    last_time: float | None = None
    state: str | None = None  # the file of the network's output after the last saved frame
    #: Once complete: the frames that were stand-ins for undecodable ones, and the reader's notes.
    damaged: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def next_frame(self) -> int:
        return sum(s.frames for s in self.segments)

    @property
    def shot_starts(self) -> list[int]:
        return [i for s in self.segments for i in s.shot_starts]

    @property
    def manifest(self) -> Path:
        return self.folder / "manifest.json"

    @property
    def state_path(self) -> Path:
        return self.folder / (self.state or "state.npy")

    def save(self) -> None:
        doc = {
            "format": FORMAT, "version": VERSION, "input": self.input, "settings": self.settings,
            "segments": [s.__dict__ for s in self.segments], "recent": self.recent, "complete": self.complete,
            "first_time": self.first_time, "last_time": self.last_time, "state": self.state,
            "damaged": self.damaged, "notes": self.notes,
        }
        files.write_atomic(self.manifest, json.dumps(doc, indent=1) + "\n", overwrite=True)

    @classmethod
    def load(cls, folder: Path) -> Partial:
        try:
            doc = json.loads((folder / "manifest.json").read_text())
            if doc.get("format") != FORMAT or doc.get("version") != VERSION:
                raise ValueError("not a manifest of this vcgan")
            part = cls(
                folder, doc["input"], doc["settings"], [Segment(**s) for s in doc["segments"]],
                doc["recent"], bool(doc["complete"]), doc["first_time"], doc["last_time"], doc["state"],
                [int(i) for i in doc["damaged"]], [str(n) for n in doc["notes"]],
            )
            if part.state is not None and os.path.basename(part.state) != part.state:
                raise ValueError("a state file outside the folder")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PartialError(
                f"{folder} holds work in progress that cannot be read ({exc}); remove it to start over"
            ) from None
        for s in part.segments:
            path = folder / s.file
            if os.path.basename(s.file) != s.file or not path.is_file() or path.stat().st_size != s.bytes:
                raise PartialError(f"{path} is missing or damaged; remove {folder} to start over")
        if part.segments and not part.complete and (part.state is None or not part.state_path.is_file()):
            raise PartialError(f"{part.state_path} is missing; remove {folder} to start over")
        return part

    def describe(self) -> str:
        return f"{self.next_frame} frames in {len(self.segments)} segment(s){', all done' if self.complete else ''}"

    def differences(self, input: dict, settings: dict) -> list[str]:
        out = []
        if input != self.input:
            out.append("the input file is not the one it was made from (its size or content differs)")
        for k in sorted(set(settings) | set(self.settings)):
            if settings.get(k) != self.settings.get(k):
                was, now = self.settings.get(k), settings.get(k)
                if k == "model_digest":
                    out.append("another model (its weights differ)")
                else:
                    out.append(f"{k.replace('_', '-')} {_shown(now)} (was {_shown(was)})")
        return out

    def load_state(self) -> np.ndarray:
        try:
            state = np.load(self.state_path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise PartialError(f"{self.state_path} cannot be read ({exc}); remove {self.folder} to start over") from None
        if state.dtype != np.float32 or state.ndim != 3 or state.shape[2] != 3:
            raise PartialError(f"{self.state_path} is not a vcgan state; remove {self.folder} to start over")
        return state

    def add_segment(self, seg: SegmentEncoder, first: int, shot_starts: list[int], state: np.ndarray | None,
                    recent: list[float] | None, first_time: float | None, last_time: float | None, complete: bool) -> None:
        """Record a finished segment with the recurrence's state after its last frame. The
        segment and its own state file are on disk before the manifest names them, and the
        state of the segment before is removed only after: at any crash the manifest names
        segments and a state that belong together."""
        size = seg.finish()
        name = seg.file.path.name
        old = self.state
        if state is not None and not complete:
            self.state = name.replace("seg-", "state-").replace(".vpk", ".npy")
            path = self.folder / self.state
            buf = files.temp_path(path)
            with open(buf, "wb") as f:
                np.save(f, np.ascontiguousarray(state, np.float32), allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
            os.replace(buf, path)
        else:
            self.state = None
        self.segments.append(Segment(name, first, seg.frames, size, list(shot_starts)))
        self.recent = None if recent is None else [float(x) for x in recent]
        self.first_time = first_time if self.first_time is None else self.first_time
        self.last_time = last_time if last_time is not None else self.last_time
        self.complete = complete
        self.save()
        if old and old != self.state:
            files.discard(self.folder / old)

    def lock(self) -> None:
        """Hold the folder for this process until :meth:`release` (or its exit): a second
        vcgan writing into the same output is refused, not allowed to mix its segments in."""
        import fcntl

        fd = os.open(self.folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise PartialError(f"another vcgan is colourising into {self.folder} now; wait for it, or stop it first") from None
        self._lock_fd = fd

    def release(self) -> None:
        fd = getattr(self, "_lock_fd", None)
        if fd is not None:
            self._lock_fd = None
            os.close(fd)

    def tidy(self) -> None:
        """Remove what a crash left behind: files the manifest does not name (a segment
        being written, a state not yet recorded)."""
        keep = {"manifest.json", LOCK_NAME, self.state, *(s.file for s in self.segments)}
        for p in self.folder.iterdir():
            if p.name not in keep and p.is_file():
                files.discard(p)

    def next_segment_path(self) -> Path:
        return self.folder / f"seg-{len(self.segments) + 1:05d}.vpk"

    def packets(self) -> Iterator[av.Packet]:
        for s in self.segments:
            yield from read_packets(self.folder / s.file)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.release()


def _shown(v) -> str:
    return "default" if v is None else str(v)
