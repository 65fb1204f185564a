import numpy as np

from vcgan_cli.flow import SceneCutDetector, estimate_flow, occlusion_mask, to_u8, warp


def textured(h, w, seed):
    rng = np.random.default_rng(seed)
    import cv2

    noise = rng.random((h // 4, w // 4)).astype(np.float32)
    return cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def test_flow_recovers_a_translation_and_warp_aligns():
    base = textured(140, 180, 0)
    prev, cur = base[10:130, 10:170], base[10:130, 13:173]  # content moves 3 px left
    flow = estimate_flow(prev, cur)
    inner = flow[20:-20, 20:-20]
    assert np.median(inner[..., 0]) == np.float32(3.0) or abs(np.median(inner[..., 0]) - 3.0) < 0.2
    assert abs(np.median(inner[..., 1])) < 0.2
    aligned = warp(prev, flow)
    assert np.abs(aligned - cur)[20:-20, 20:-20].mean() < 0.01
    back = estimate_flow(cur, prev)
    mask = occlusion_mask(flow, back)
    assert mask[20:-20, 20:-20].mean() > 0.9


def test_scene_cut_detector():
    a, b = textured(120, 160, 1), textured(120, 160, 2) * 0.5 + 0.4
    det = SceneCutDetector()
    frames = [a[:, i : i + 120] for i in range(0, 20, 2)] + [b[:, i : i + 120] for i in range(0, 20, 2)]
    cuts = []
    for t in range(1, len(frames)):
        p, c = to_u8(frames[t - 1]), to_u8(frames[t])
        if det.is_cut(p, c, estimate_flow(p, c)):
            cuts.append(t)
    assert cuts == [10]
