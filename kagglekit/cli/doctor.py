"""``kk doctor``: what kk finds on this machine, what kk train will do here, and a real training step."""

from __future__ import annotations

import typer

from ._app import Device, app, console, value


@app.command("doctor")
def doctor(
    json_out: bool = typer.Option(False, "--json", help="print the report as JSON"),
    weights: str = typer.Option(None, "--weights", help="weight file or folder to look in (default: KK_WEIGHTS_DIR)"),
    device: Device = typer.Option(Device.auto, "--device", help="the device kk train would be given"),
    devices: int = typer.Option(1, "--devices", help="the processes kk train would start (one per GPU)"),
    smoke: bool = typer.Option(True, "--smoke/--no-smoke", help="run the ~10 s training smoke test"),
) -> None:
    """The first command on a new machine: versions, GPUs, workers, precision and why, weights, data,
    credentials (never their values), then ~10 s of real training with kk train's settings.
    Exits 1 with one line naming what would fail."""
    import json
    import sys

    from ..doctor import doctor as run_doctor

    report = run_doctor(weights=weights, smoke=smoke, device=value(device) or "auto", devices=devices)
    if json_out:
        print(json.dumps(report.as_json(), indent=2, default=str))
    else:
        out = console()
        out.print("versions: " + ", ".join(f"{k} {v}" for k, v in report.versions.items()), markup=False)
        for i, g in enumerate(report.gpus):
            out.print(f"gpu {i}: {g['name']}, sm {g['capability']}, {g['memory_gib']} GiB", markup=False)
        if not report.gpus:
            out.print("gpu: none", markup=False)
        p = report.plan
        if p:
            why = p["why"]
            out.print(f"cores: {report.cores}; kk train uses {p['processes']} process(es) x {p['threads']} threads, "
                      f"{p['workers']} DataLoader workers each ({why['workers']})", markup=False)
            scaler = " with a gradient scaler" if p["grad_scaler"] else ""
            out.print(f"device: {p['device']}; precision: {p['precision']}{scaler} ({why['precision']})", markup=False)
            out.print(f"channels_last: {'yes' if p['channels_last'] else 'no'} ({why['channels_last']}); "
                      f"pinned memory: {'yes' if p['pin_memory'] else 'no'}; default batch: {p['batch_size']} "
                      f"({why['batch_size']})", markup=False)
        marks = {"ok": "ok  ", "note": "note", "fail": "FAIL"}
        for c in report.checks:
            out.print(f"[{marks[c.status]}] {c.name}: {c.detail}", markup=False)
        if report.smoke:
            s = report.smoke
            out.print(f"smoke test: {s['arch']} at {s['size']} px, batch {s['batch']}, {s['images']} images in "
                      f"{s['seconds']} s: {s['images_per_s']} img/s on {s['device']} ({s['precision']}, "
                      f"{s['workers']} workers)", markup=False)
    if report.failures:
        f = report.failures[0]
        print(f"error: {f.name}: {f.detail}", file=sys.stderr)
        raise typer.Exit(1)
