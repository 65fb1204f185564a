import numpy as np
import pytest

from vcgan_cli.metrics import PSNR_CAP, ClipScorer, FlowReference, colourfulness, psnr, ssim


def textured_rgb(h, w, seed, tint=(1.0, 1.0, 1.0)):
    import cv2

    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.random((h // 6, w // 6)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(np.stack([base * t for t in tint], -1), 0, 1).astype(np.float32)


def test_psnr_and_ssim_agree_with_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(0)
    gt = textured_rgb(96, 128, 1, (0.9, 0.7, 0.5))
    pred = np.clip(gt + rng.normal(0, 0.05, gt.shape), 0, 1).astype(np.float32)
    ref_psnr = metrics.peak_signal_noise_ratio(gt, pred, data_range=1.0)
    ref_ssim = metrics.structural_similarity(
        gt, pred, data_range=1.0, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert psnr(pred, gt) == pytest.approx(ref_psnr, abs=1e-3)
    assert ssim(pred, gt) == pytest.approx(ref_ssim, abs=1e-3)


def score_clip(preds, gts):
    scorer, ref = ClipScorer(), FlowReference()
    for p, g in zip(preds, gts):
        scorer.add(p, g, ref.step(g))
    return scorer.summary()


def moving_clip(n=6, tint=(0.9, 0.6, 0.3)):
    big = textured_rgb(120, 200, 3, tint)
    return [big[10:110, 10 + 3 * t : 150 + 3 * t].copy() for t in range(n)]  # pure 3 px/frame pan


def test_identical_clips_score_perfectly():
    clip = moving_clip()
    s = score_clip(clip, clip)
    assert s["psnr"] == PSNR_CAP and s["ssim"] == pytest.approx(1.0)
    assert s["cdc"] == pytest.approx(0.0, abs=0.02)
    static = [clip[0]] * 5
    s = score_clip(static, static)
    assert s["warp-error"] == pytest.approx(0.0, abs=1e-9) and s["cdc"] == 0.0


def test_warp_error_is_small_for_consistent_colour_and_large_for_flicker():
    gts = moving_clip()
    consistent = score_clip(gts, gts)["warp-error"]
    rng = np.random.default_rng(5)
    flicker = [np.clip(f * rng.uniform(0.6, 1.4, 3), 0, 1).astype(np.float32) for f in gts]
    flickering = score_clip(flicker, gts)["warp-error"]
    assert consistent < 1e-3
    assert flickering > 20 * consistent and flickering > 5e-3
    assert score_clip(flicker, gts)["cdc"] > score_clip(gts, gts)["cdc"]


def test_colourfulness():
    gray = np.repeat(textured_rgb(50, 50, 1)[..., :1], 3, -1)
    assert colourfulness(gray) == pytest.approx(0.0, abs=1e-9)
    assert colourfulness(textured_rgb(50, 50, 1, (1.0, 0.3, 0.1))) > 20
