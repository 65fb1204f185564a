"""Video I/O (a package: ``types``, ``pixels``, ``reader``, ``writer``): read a film's luma frame by frame, write the colourised film back.

The reader makes ONE pass over the input in demux order and yields decoded video
frames (as normalised luma) interleaved with the raw audio packets, so memory stays
flat however long the film is.  The writer encodes frames built directly from Y/Cb/Cr
planes (no RGB round trip), copies (or, where the container cannot take the codec,
transcodes) the audio, keeps every video timestamp exactly, and only ever puts a file
under the final name once it is complete (temporary file + ``os.replace``).

Nothing here prints or imports a UI library; every user-facing failure is a
:class:`~vcgan_cli.errors.MediaError` with a one-line message.
"""


from ..codecs import CONTAINERS
from .reader import MediaReader
from .types import AudioPacket, AudioStreamInfo, Frame, SourceTags, VideoInfo
from .writer import SUPPORTED_CODECS, VIDEO_EXTENSIONS, OutputPlan, VideoWriter, sane_dts


__all__ = [
    "AudioStreamInfo",
    "VideoInfo",
    "Frame",
    "AudioPacket",
    "MediaReader",
    "VideoWriter",
    "OutputPlan",
    "SUPPORTED_CODECS",
    "CONTAINERS",
    "SourceTags",
    "VIDEO_EXTENSIONS",
    "sane_dts",
]


