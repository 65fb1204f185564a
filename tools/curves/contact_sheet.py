"""Contact sheets to look at models side by side (developer tooling, not shipped).

    python3 tools/curves/contact_sheet.py --model ./old --model ./new --out sheets/ \\
        [--davis ../shared/data/davis-val] [--photos ../shared/data/bw-footage/photos --n-photos 12] \\
        [--film ../shared/data/bw-footage/a-bomb_blast_effects_part.mp4 --film-every 40]

Columns: gray | each model | truth (DAVIS). DAVIS: each clip's middle frame after a recurrent
pass from its first frame, as `vcgan colorize` runs; photos: image mode; films: frames spread
over the whole film after one recurrent pass. Every cell keeps the source's own luma.
"""
import argparse
from pathlib import Path

import av
import cv2
import numpy as np

from vcgan_cli.clips import find_clips, read_clip
from vcgan_cli.colour import rgb_to_gray
from vcgan_cli.images import read_image
from vcgan_cli.pipeline import colorize_frames, compose
from vcgan_cli.runtime import load_model

CELL = 240


def cell(rgb: np.ndarray, label: str = "") -> np.ndarray:
    h, w = rgb.shape[:2]
    img = cv2.resize(rgb, (CELL, max(1, round(h * CELL / w))), interpolation=cv2.INTER_AREA)
    img = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    if label:
        cv2.putText(img, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def row(cells: list[np.ndarray]) -> np.ndarray:
    h = max(c.shape[0] for c in cells)
    return np.concatenate([np.pad(c, ((0, h - c.shape[0]), (0, 2), (0, 0))) for c in cells], 1)


def save(rows: list[np.ndarray], path: Path) -> None:
    w = max(r.shape[1] for r in rows)
    sheet = np.concatenate([np.pad(r, ((0, 2), (0, w - r.shape[1]), (0, 0))) for r in rows], 0)
    cv2.imwrite(str(path), sheet[..., ::-1])
    print("wrote", path)


def last_of(model, lumas, keep: set[int] | None = None):
    """Colourise ``lumas`` recurrently; the composed frames at ``keep`` (or the last one)."""
    out, lumas = {}, list(lumas)
    for t, (rgb, _) in enumerate(colorize_frames(iter(lumas), model)):
        if (keep is None and t == len(lumas) - 1) or (keep and t in keep):
            out[t] = compose(lumas[t], rgb)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--davis")
    ap.add_argument("--photos")
    ap.add_argument("--n-photos", type=int, default=12)
    ap.add_argument("--film", action="append", default=[])
    ap.add_argument("--film-every", type=int, default=40)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    models = [load_model(m, device="cpu") for m in args.model]
    names = [Path(m).name or m for m in args.model]
    if args.davis:
        rows = []
        for clip in find_clips(args.davis):
            frames = list(read_clip(clip))
            mid = len(frames) // 2
            lumas = [rgb_to_gray(f) for f in frames[: mid + 1]]
            cells = [cell(np.repeat(lumas[-1][..., None], 3, -1), clip.name[:22])]
            cells += [cell(last_of(m, lumas)[mid], n) for m, n in zip(models, names)]
            rows.append(row(cells + [cell(frames[mid], "truth")]))
        save(rows, out / "davis.png")
    if args.photos:
        rows = []
        files = sorted(p for p in Path(args.photos).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        step = max(1, len(files) // args.n_photos)
        for p in files[::step][: args.n_photos]:
            luma = read_image(p).luma
            cells = [cell(np.repeat(luma[..., None], 3, -1), p.stem[:22])]
            cells += [cell(last_of(m, [luma])[0], n) for m, n in zip(models, names)]
            rows.append(row(cells))
        save(rows, out / "photos.png")
    for film in args.film:
        with av.open(film) as c:
            lumas = [f.to_ndarray(format="gray").astype(np.float32) / 255.0 for f in c.decode(video=0)]
        keep = set(range(args.film_every // 2, len(lumas), args.film_every))
        per_model = [last_of(m, lumas, keep) for m in models]
        rows = [row([cell(np.repeat(lumas[t][..., None], 3, -1), f"frame {t}")] + [cell(pm[t], n) for pm, n in zip(per_model, names)]) for t in sorted(keep)]
        save(rows, out / f"film-{Path(film).stem}.png")


if __name__ == "__main__":
    main()
