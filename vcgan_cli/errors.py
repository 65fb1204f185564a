"""Error types. Every user-facing failure is a :class:`VcganError` whose message is one line."""


class VcganError(Exception):
    """A failure the user can act on; ``str(err)`` is a single line saying what to do.
    ``exit_code`` is the command's exit status for it."""

    exit_code = 1


class MediaError(VcganError):
    """A video or image could not be read or written."""


class WeightsError(VcganError):
    """Model weights are missing, corrupt or do not match their config."""


class DamagedMediaError(MediaError):
    """The input is damaged and ``strict`` reading was asked for (exit status 3)."""

    exit_code = 3


class Interrupted(VcganError):
    """A run stopped on request (Ctrl-C, SIGTERM, SIGHUP) at a frame boundary, its work
    kept for ``--resume``. ``exit_code`` is 128 + the signal's number (130 for Ctrl-C)."""

    def __init__(self, message: str, *, signum: int | None, partial: str | None, frames_done: int, frames_total: int | None):
        super().__init__(message)
        self.signum = signum
        self.partial = partial
        self.frames_done = frames_done
        self.frames_total = frames_total

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return 128 + (self.signum or 2)
