import numpy as np

from vcgan_cli.colour import rgb_to_gray, rgb_to_ycbcr, ycbcr_to_rgb


def test_ycbcr_round_trip():
    rng = np.random.default_rng(0)
    rgb = rng.random((40, 30, 3), dtype=np.float32)
    for matrix in ("bt601", "bt709", "bt2020"):
        y, cb, cr = rgb_to_ycbcr(rgb, matrix)
        assert np.abs(ycbcr_to_rgb(y, cb, cr, matrix) - rgb).max() < 1e-5


def test_out_of_gamut_colour_keeps_luma_exactly():
    rng = np.random.default_rng(1)
    y = rng.random((50, 50), dtype=np.float32)
    cb = rng.uniform(-0.5, 0.5, (50, 50)).astype(np.float32)
    cr = rng.uniform(-0.5, 0.5, (50, 50)).astype(np.float32)
    rgb = ycbcr_to_rgb(y, cb, cr)
    assert rgb.min() >= 0 and rgb.max() <= 1
    assert np.abs(rgb_to_gray(rgb) - y).max() < 1e-5
    # chroma is reduced, never reversed
    _, cb2, cr2 = rgb_to_ycbcr(rgb)
    assert np.all(cb2 * cb >= -1e-6) and np.all(cr2 * cr >= -1e-6)
