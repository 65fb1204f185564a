"""``vcgan bench``."""
from __future__ import annotations

import io
import json
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from .common import (
    check_result_file,
    fail,
    run_guarded,
    write_text_file,
    err,
    main,
    model_option,
    runtime_options,
)


BENCH_METRICS = ("psnr", "ssim", "warp-error", "cdc", "colourfulness", "chroma-error", "cast", "purple", "speed")


@main.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--predictions", type=click.Path(path_type=Path), help="Score this folder of another method's frames (same layout as DATA) instead of a model.")
@model_option
@click.option(
    "--metric",
    "metric_names",
    multiple=True,
    type=click.Choice([*BENCH_METRICS, "preview", "all"]),
    default=("all",),
    show_default=True,
    help="Metric(s) to measure; repeatable. 'all' is every quality metric, plus speed for a model. "
         "'preview': how long `vcgan preview` takes against a full colourise of DATA (a film, or a clip tree's first clip), as a ratio.",
)
@click.option("--size", "sizes", multiple=True, type=click.IntRange(16, 4096), help="Working short side; repeat to time several sizes (speed).")
@click.option("--max-frames", type=click.IntRange(1), default=None, help="Use at most this many frames of each clip.")
@click.option("--clips", "max_clips", type=click.IntRange(1), default=None, help="Use at most this many clips.")
@click.option("--compare", "compare", multiple=True, metavar="SPEC", help="Also score and time this model (repeatable; any --model SPEC) in the same run, for rows and speed ratios measured alike.")
@click.option("--speed-frames", type=click.IntRange(8), default=48, show_default=True, help="Frames timed for speed.")
@click.option("--repeats", type=click.IntRange(1), default=3, show_default=True, help="Speed repetitions (median reported).")
@runtime_options
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write every number, the settings and the environment here.")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), help="Also write a CSV of the per-clip rows.")
@click.option("--quiet", "-q", is_flag=True, help="No progress or tables.")
@click.option("--recurrence", "recurrences", multiple=True, type=click.Choice(["gray", "colour"]), default=("gray",), show_default=True,
              help="The model's recurrence (as colorize --recurrence); repeat for a row of each, measured alike in this run.")
@click.option("--references", type=click.Choice(["first"]), default=None,
              help="first: give each clip's true first frame as its key frame (the protocol of exemplar-based papers); PSNR is also reported per part of the clip (first quarter, middle, last quarter).")
def bench(data, predictions, model, metric_names, sizes, max_frames, max_clips, compare, speed_frames, repeats, device, backend, precision, json_path, csv_path, quiet, recurrences, references):
    """Measure quality (PSNR, SSIM, warp error, CDC, colourfulness) against the ground-truth
    colour clips in DATA, and speed. DATA: a DAVIS tree, folders of frames, or colour videos."""
    from rich.table import Table

    from .. import bench as B
    from ..metrics import METRICS

    names = set(metric_names)
    quality = tuple(m for m in METRICS if m in names or "all" in names)
    want_speed = "speed" in names or ("all" in names and predictions is None)
    want_preview = "preview" in names
    for name in ("speed", "preview"):
        if predictions is not None and name in names:
            fail(f"--metric {name} needs a model, not --predictions")
    if predictions is not None and model is not None:
        fail("give --model or --predictions, not both")
    if predictions is not None and compare:
        fail("--compare needs a model, not --predictions")
    if predictions is not None and (references or set(recurrences) != {"gray"}):
        fail("--recurrence and --references need a model, not --predictions")
    recurrences = tuple(dict.fromkeys(recurrences))
    for path, option in ((json_path, "--json"), (csv_path, "--csv")):  # re-running a bench replaces its own results
        check_result_file(path, option, overwrite=True, protected=(data, predictions), trees=(data, predictions))
    if json_path is not None and csv_path is not None and json_path.absolute() == csv_path.absolute():
        fail(f"--json and --csv are the same file {json_path}; give two")

    def work():
        colorizer = None
        if predictions is None:
            from ..runtime import load_model

            colorizer = load_model(model, device=device, precision=precision, backend=backend)
        report = {"data": str(data), "settings": {"metrics": list(quality), "sizes": list(sizes), "max_frames": max_frames, "clips": max_clips, "predictions": str(predictions) if predictions else None,
                                                  "recurrence": list(recurrences), "references": references}}
        report["environment"] = B.environment(colorizer)
        status = None if quiet else err.status("")
        if status:
            status.start()
        try:
            if quality:
                def on_clip(name, n, total):
                    if status:
                        status.update(f"scoring clip {n + 1}/{total}: {name}")
                report["quality"] = B.evaluate_quality(
                    data, model=colorizer, predictions=predictions, metrics=quality,
                    size=sizes[0] if sizes else None, max_frames=max_frames, max_clips=max_clips, progress=on_clip,
                    recurrence=recurrences[0], references=references,
                )
                for other_mode in recurrences[1:]:  # the same model, another recurrence: a row beside
                    q = B.evaluate_quality(
                        data, model=colorizer, metrics=quality, size=sizes[0] if sizes else None,
                        max_frames=max_frames, max_clips=max_clips, progress=on_clip, recurrence=other_mode,
                        references=references,
                    )
                    report["quality"]["rows"][q["method"]] = q["rows"][q["method"]]
            if want_speed:
                report["speed"] = B.measure_speed(
                    data, colorizer, sizes=tuple(sizes), frames=speed_frames, repeats=repeats,
                    progress=(lambda m: status.update(m)) if status else None,
                )
            if want_preview:
                report["preview"] = B.measure_preview(
                    data, colorizer, size=sizes[0] if sizes else None, repeats=repeats,
                    progress=(lambda m: status.update(m)) if status else None,
                )
            for spec in compare:  # each model measured exactly as the first, in this run
                other = load_model(spec, device=device, precision=precision, backend=backend)
                label = f"{other.name} ({spec})"
                entry = report.setdefault("compare", {})[label] = {"environment": B.environment(other)}
                if quality:
                    q = B.evaluate_quality(
                        data, model=other, metrics=quality, size=sizes[0] if sizes else None,
                        max_frames=max_frames, max_clips=max_clips, progress=on_clip,
                    )
                    report["quality"]["rows"][label] = q["rows"][q["method"]]
                if want_speed:
                    entry["speed"] = B.measure_speed(
                        data, other, sizes=tuple(sizes), frames=speed_frames, repeats=repeats,
                        progress=(lambda m: status.update(m)) if status else None,
                    )
                    entry["network_time_ratio"] = [  # the first model's network time per frame over this one's
                        a["network_ms"] / b["network_ms"] for a, b in zip(report["speed"]["sizes"], entry["speed"]["sizes"])
                    ]
        finally:
            if status:
                status.stop()
        return report

    report = run_guarded(work)
    out = Console(highlight=False)
    if "quality" in report and not quiet:
        q = report["quality"]
        cols = [m for m in BENCH_METRICS if m in q["metrics"]]
        fmt = {"psnr": "{:.2f}", "ssim": "{:.4f}", "warp-error": "{:.5f}", "cdc": "{:.5f}", "colourfulness": "{:.1f}",
               "chroma-error": "{:.2f}", "cast": "{:.2f}", "purple": "{:.2f}"}
        if references and "psnr" in cols:
            cols += list(B.POSITIONS)
            fmt.update({p: "{:.2f}" for p in B.POSITIONS})
        table = Table(title=f"Quality on {len(q['clips'])} clip(s) of {data}")
        table.add_column("method")
        table.add_column("clip")
        for c in cols:
            table.add_column(c, justify="right")
        for row, body in q["rows"].items():
            for clip, summ in [("mean", body["mean"]), *(body["clips"].items() if len(q["clips"]) > 1 else [])]:
                table.add_row(escape(row) if clip == "mean" else "", escape(clip), *[("—" if summ.get(c) is None else fmt[c].format(summ[c])) for c in cols])
            table.add_section()
        out.print(table)
    if "speed" in report and not quiet:
        timed = [(report["environment"], report["speed"])]
        timed += [(e["environment"], e["speed"]) for e in report.get("compare", {}).values() if "speed" in e]
        for env, sp in timed:
            table = Table(caption="size: working short side; net in: padded network input; dec/enc: decode/encode; fps: end to end; MB: peak memory", title=f"Speed: {env.get('model')} on {env.get('device')} {env.get('precision')} ({env.get('backend', 'torch')}), {sp['parameters'] / 1e6:.2f} M params, {sp['gmacs_256x512']:.2f} GMACs at 256×512")
            for c in ("size", "net in", "dec fps", "flow ms", "net ms", "enc fps", "fps", "host MB", "GPU MB", "GMACs"):
                table.add_column(c, justify="right")
            for r in sp["sizes"]:
                table.add_row(
                    str(r["short_side"]), f"{r['network_size'][1]}×{r['network_size'][0]}", f"{r['decode_fps']:.0f}",
                    f"{r['flow_ms']:.1f}", f"{r['network_ms']:.1f}", f"{r['encode_fps']:.0f}", f"{r['end_to_end_fps']:.2f}",
                    f"{r['peak_host_mb']:.0f}", "—" if r["peak_gpu_mb"] is None else f"{r['peak_gpu_mb']:.0f}", f"{r['gmacs_per_frame']:.2f}",
                )
            out.print(table)
            for r in sp["sizes"]:
                shares = ", ".join(f"{k} {v * 100:.0f}%" for k, v in r.get("stage_share", {}).items() if v is not None)
                out.print(f"size {r['short_side']}: each stage's time per frame as a share of the end-to-end time: {shares}")
        for label, e in report.get("compare", {}).items():
            if "network_time_ratio" in e:
                ratios = ", ".join(f"{r:.2f}" for r in e["network_time_ratio"])
                out.print(f"network time per frame, {report['environment'].get('model')} / {escape(label)}: {ratios}")
    if "preview" in report and not quiet:
        p = report["preview"]
        out.print(f"preview ({p['sheet_frames']} frames) against colourise ({p['film_frames']} frames), median of {p['repeats']}: "
                  f"{p['preview_s']:.2f} s / {p['colorize_s']:.2f} s = {p['ratio']:.3f}")
    if json_path:
        run_guarded(lambda: write_text_file(json_path, json.dumps(report, indent=2) + "\n", overwrite=True))
    if csv_path and "quality" in report:
        import csv

        def write_csv():
            q = report["quality"]
            text = io.StringIO(newline="")
            w = csv.writer(text)
            w.writerow(["method", "clip", *q["metrics"], "frames"])
            for row, body in q["rows"].items():
                for clip, summ in [*body["clips"].items(), ("mean", body["mean"])]:
                    w.writerow([row, clip, *[summ.get(m) for m in q["metrics"]], summ.get("frames")])
            write_text_file(csv_path, text.getvalue(), overwrite=True)

        run_guarded(write_csv)
