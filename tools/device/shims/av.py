"""Stand-in for PyAV on the device machine, which has no PyAV: training reads frame folders
only, and vcgan_cli.media needs the module just to import. Any attribute is a placeholder
class, so the annotations there resolve; decoding a video would fail at once."""


def __getattr__(name):
    return type(name, (Exception,), {})
