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
