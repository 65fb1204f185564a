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
    quality_option: str = "crf"  # the encoder option the --crf value goes to (NVENC: its constant-quality "cq")
    gpu: bool = False  # runs on an NVIDIA GPU's encoder (NVENC): refused up front where none opens

    def encoder_options(self, crf: int | None, pix_fmt: str) -> dict[str, str]:
        opts = dict(self.options)
        if self.crf is not None:
            opts[self.quality_option] = str(crf if crf is not None else self.default_crf)
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
            return f"{self.name} {pix_fmt} {self.quality_option} {crf if crf is not None else self.default_crf}"
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
        # NVIDIA's hardware encoders (in the PyAV wheel): the CPU is left to the pipeline, for a
        # film colourised on a GPU; constant quality ("cq" 1..51, like x264's CRF scale)
        Codec("h264_nvenc", ".mp4", "H.264 on an NVIDIA GPU's encoder (needs the GPU and its driver)", crf=(1, 51),
              default_crf=19, odd_sizes_444=True, options={"preset": "p5", "rc": "vbr", "b": "0"}, quality_option="cq", gpu=True),
        Codec("hevc_nvenc", ".mp4", "HEVC on an NVIDIA GPU's encoder", crf=(1, 51), default_crf=21, odd_sizes_444=True,
              options={"preset": "p5", "rc": "vbr", "b": "0"}, quality_option="cq", gpu=True),
    )
}

#: Output extension → (FFmpeg muxer, the codecs it takes).
CONTAINERS: dict[str, tuple[str, tuple[str, ...]]] = {
    ".mp4": ("mp4", ("libx264", "libx265", "libvpx-vp9", "h264_nvenc", "hevc_nvenc")),
    ".m4v": ("mp4", ("libx264", "libx265", "libvpx-vp9", "h264_nvenc", "hevc_nvenc")),
    ".mov": ("mov", ("libx264", "libx265", "prores_ks", "h264_nvenc", "hevc_nvenc")),
    ".mkv": ("matroska", ("libx264", "libx265", "prores_ks", "ffv1", "libvpx-vp9", "h264_nvenc", "hevc_nvenc")),
    ".webm": ("webm", ("libvpx-vp9",)),
}

#: The widest CRF range any codec takes (the CLI's bound; the writer checks each codec's own).
CRF_BOUNDS = (0, max(c.crf[1] for c in CODECS.values() if c.crf))


def crf_help() -> str:
    ranges = ", ".join(
        f"{c.name} {c.crf[0]}..{c.crf[1]} (default {c.default_crf}{'' if c.quality_option == 'crf' else ', as ' + c.quality_option})"
        for c in CODECS.values() if c.crf
    )
    return f"Quality, lower is better: {ranges}."


def codec_help() -> str:
    return "Video codec: " + "; ".join(f"{c.name} ({c.extension}): {c.use}" for c in CODECS.values()) + "."


_GPU_ENCODERS: dict[str, str | None] = {}


def gpu_encoder_problem(name: str) -> str | None:
    """Why a GPU encoder cannot run here (None if it opens): it is tried once on a tiny picture."""
    if name not in _GPU_ENCODERS:
        import av

        try:
            cc = av.CodecContext.create(name, "w")
            cc.width, cc.height, cc.pix_fmt = 256, 256, "yuv420p"
            from fractions import Fraction

            cc.time_base = Fraction(1, 25)
            cc.open()
            _GPU_ENCODERS[name] = None
        except Exception as exc:  # noqa: BLE001 - any failure to open says the same to a user
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            _GPU_ENCODERS[name] = text[:120]
    return _GPU_ENCODERS[name]
