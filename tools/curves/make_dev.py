"""Build the dev set that chooses vcgan-lite v1's design and checkpoints (not shipped).

    python3 tools/curves/make_dev.py ../shared/data/train-videos /work/dev [--frames 12]

The 12 middle frames of eight held-out `train-videos` clips (the four of the earlier GPU
sessions' dev set, plus four of the clips added with people, faces and cars), scaled to a
short side of at most 360 px, written in DAVIS's layout (JPEGImages/480p/<clip>/00000.jpg).
Stage-2 training must leave these clips out (DEV_CLIPS). `davis-val` is not touched.
`--frames 60` builds the long-shot dev set (the middle 60 frames, all of a shorter clip), on
which a colour recurrence's drift along a shot shows as it does on DAVIS's 40-90-frame clips.
"""
import argparse
from pathlib import Path

import av
import cv2

DEV_CLIPS = (
    "sam2-01_dog", "co-tracker-paragliding", "imageio-binaries-cockatoo", "track-anything-test-sample2",
    "ask-anything-yoga", "liveportrait-d20", "computervisionworkshop-traffic", "mmaction2-test_video_structuralize",
)
FRAMES = 12


def main(src: str, out: str, count: int = FRAMES) -> None:
    for name in DEV_CLIPS:
        with av.open(str(Path(src) / f"{name}.mp4")) as c:
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        mid = max(0, len(frames) // 2 - count // 2)
        folder = Path(out) / "JPEGImages" / "480p" / name
        folder.mkdir(parents=True, exist_ok=True)
        for k, rgb in enumerate(frames[mid : mid + count]):
            h, w = rgb.shape[:2]
            s = min(1.0, 360 / min(h, w))
            if s < 1:
                rgb = cv2.resize(rgb, (round(w * s / 2) * 2, round(h * s / 2) * 2), interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(folder / f"{k:05d}.jpg"), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        print(name, len(frames), "frames; kept", len(frames[mid : mid + count]), "from", mid)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--frames", type=int, default=FRAMES)
    a = ap.parse_args()
    main(a.src, a.out, a.frames)
