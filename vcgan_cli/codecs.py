"""The codec table: every output video codec vcgan writes, and everything decided per codec,
in one place. The writer (media.VideoWriter) and the CLI's --codec/--crf choices and help
are both made from it, so they cannot disagree."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Codec:
    name: str  # the FFmpeg encoder
    extension: str  # the default output container for it
    use: str  # one phrase for --help
    crf: tuple[int, int] | None = None  # quality range, lower is better; None: no CRF
    default_crf: int | None = None
    keeps_high_bit_depth: bool = False  # a 10-bit or deeper source stays 10-bit
    odd_sizes_444: bool = False  # an odd width or height is written 4:4:4 (4:2:0 needs even sizes)
    options: dict[str, str] = field(default_factory=dict)  # fixed encoder options
    quality: str = ""  # what output_info says instead of a CRF

    def encoder_options(self, crf: int | None, pix_fmt: str) -> dict[str, str]:
        opts = dict(self.options)
        if self.crf is not None:
            opts["crf"] = str(crf if crf is not None else self.default_crf)
        if self.name == "prores_ks":
            opts["profile"] = "3" if pix_fmt.startswith("yuv422") else "4"  # HQ 4:2:2, or 4444
        return opts

    def pixel_format(self, width: int, height: int, ten_bit: bool) -> str:
        if self.name == "prores_ks":  # always 10-bit; 4:2:2 needs an even width
            return "yuv444p10le" if width % 2 else "yuv422p10le"
        sub = "444" if (self.odd_sizes_444 and (width % 2 or height % 2)) else "420"
        return f"yuv{sub}p10le" if ten_bit else f"yuv{sub}p"

    def describe(self, crf: int | None, pix_fmt: str) -> str:
        if self.crf is not None:
            return f"{self.name} {pix_fmt} crf {crf if crf is not None else self.default_crf}"
        if self.name == "prores_ks":
            return f"{self.name} {pix_fmt} profile " + ("hq" if pix_fmt.startswith("yuv422") else "4444")
        return f"{self.name} {pix_fmt}" + (f" {self.quality}" if self.quality else "")


CODECS: dict[str, Codec] = {
    c.name: c
    for c in (
        Codec("libx264", ".mp4", "H.264, plays everywhere", crf=(0, 51), default_crf=18, odd_sizes_444=True,
              options={"preset": "medium"}),
        Codec("libx265", ".mp4", "HEVC, smaller files", crf=(0, 51), default_crf=20, keeps_high_bit_depth=True,
              odd_sizes_444=True, options={"preset": "medium", "x265-params": "log-level=error"}),
        Codec("prores_ks", ".mov", "ProRes, an editing master", keeps_high_bit_depth=True, options={"vendor": "apl0"}),
        Codec("ffv1", ".mkv", "FFV1, a lossless archival master", keeps_high_bit_depth=True,
              options={"level": "3", "g": "1", "slicecrc": "1"}, quality="lossless"),
        Codec("libvpx-vp9", ".webm", "VP9, for the web", crf=(0, 63), default_crf=30, keeps_high_bit_depth=True,
              options={"b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"}),
    )
}

#: Output extension → (FFmpeg muxer, the codecs it takes).
CONTAINERS: dict[str, tuple[str, tuple[str, ...]]] = {
    ".mp4": ("mp4", ("libx264", "libx265", "libvpx-vp9")),
    ".m4v": ("mp4", ("libx264", "libx265", "libvpx-vp9")),
    ".mov": ("mov", ("libx264", "libx265", "prores_ks")),
    ".mkv": ("matroska", ("libx264", "libx265", "prores_ks", "ffv1", "libvpx-vp9")),
    ".webm": ("webm", ("libvpx-vp9",)),
}

#: The widest CRF range any codec takes (the CLI's bound; the writer checks each codec's own).
CRF_BOUNDS = (0, max(c.crf[1] for c in CODECS.values() if c.crf))


def crf_help() -> str:
    ranges = ", ".join(f"{c.name} {c.crf[0]}..{c.crf[1]} (default {c.default_crf})" for c in CODECS.values() if c.crf)
    return f"Quality, lower is better: {ranges}."


def codec_help() -> str:
    return "Video codec: " + "; ".join(f"{c.name} ({c.extension}): {c.use}" for c in CODECS.values()) + "."
