"""``acquire-pairs``: record (camera frame, screen image) pairs, calibrate the rig, inspect recordings.

Exit codes: 0 ok, 2 user error (one line ``acquire-pairs: error: ...``), 1 failure.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

PROG = "acquire-pairs"

DESCRIPTION = """\
Record training pairs for the hidden-screen experiment: a camera films a surface (a door) lit by a
screen it cannot see; a network learns camera frame -> screen image.

Two recording modes:
  passive  The screen plays anything (a film in your player). The recorder grabs the screen and
           the camera at --rate pairs/s, stamps both on one monotonic clock, and pairs each camera
           frame with the screen grab taken one display-to-camera latency earlier.
  active   The recorder itself shows stimuli full-screen (--stimulus generated | image folder |
           video), waits the calibrated latency, takes the next camera frame, and records exactly
           which stimulus was shown (its image is stored); the screenshot is kept as a check.

Typical session:
  acquire-pairs calibrate all --camera 0 --screen 1 --out calibration.json
  acquire-pairs record --mode passive --camera 0 --screen 1 --calibration calibration.json \\
      --duration 600 --out recordings
  acquire-pairs info recordings/rec-...

Devices: --camera 0 | /dev/video2 | rtsp://... | file:clip.mp4 | sim[:latency_ms=80,fps=30,...]
         --screen 1 | region:x,y,w,h | virtual[:WxH]   (sim + virtual needs no hardware/display)
These short forms parse into the typed device configs listed by `acquire-pairs record --help`
(WxH is width x height as you type it; configs store (height, width)).
Ctrl-C stops cleanly; every pair listed in manifest.jsonl is complete even after a crash.
"""


class UserError(Exception):
    """A mistake the user can fix: printed as one line, exit code 2."""


def _size_hw(text: str) -> tuple[int, int]:
    """``WxH`` as users type it -> ``(height, width)``."""
    from acquire.config import parse_wxh

    try:
        return parse_wxh(text, "size")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _box(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected x,y,w,h, got {text!r}") from None
    return x, y, w, h


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, never a traceback
        raise UserError(message)


# flag dest -> RecordConfig field (flags are dotted overrides on top of --config)
_RECORD_FLAGS = ("mode", "camera", "screen", "rate_hz", "duration_s", "pairs", "out", "name",
                 "calibration", "latency_ms", "settle_ms", "stimulus", "stimulus_size_hw",
                 "screen_hz", "writers", "queue", "format", "seed")


def build_parser() -> argparse.ArgumentParser:
    from acquire.config import RecordConfig
    from apps.cli import add_config_arguments, field_reference

    p = _Parser(prog=PROG, description=DESCRIPTION,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("record", help="record pairs (passive or active mode)",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="RecordConfig fields (for --config files and --set):\n"
                       + "\n".join(field_reference(RecordConfig)))
    r.add_argument("--config", type=Path, help="RecordConfig as YAML/TOML/JSON; flags and --set "
                   "override it")
    r.add_argument("--mode", choices=["passive", "active"])
    r.add_argument("--camera", help="camera (default 0): index, /dev/videoN, URL, file:PATH, "
                   "sim[:key=value,...]")
    r.add_argument("--screen", help="screen (default 1): monitor number, region:x,y,w,h, "
                   "virtual[:WxH]")
    r.add_argument("--rate", dest="rate_hz", type=float, help="target pairs/s (default 30)")
    r.add_argument("--duration", dest="duration_s", type=float, help="seconds to record")
    r.add_argument("--pairs", type=int, help="pairs to record")
    r.add_argument("--out", type=Path, help="parent folder (default recordings/)")
    r.add_argument("--name", help="recording folder name (default rec-DATE-TIME)")
    r.add_argument("--calibration", type=Path, help="calibration.json to apply")
    r.add_argument("--latency-ms", dest="latency_ms", type=float, help="override latency")
    r.add_argument("--settle-ms", dest="settle_ms", type=float, help="active: extra wait")
    r.add_argument("--stimulus", help="active: generated | image folder | video file")
    r.add_argument("--stimulus-size", dest="stimulus_size_hw", type=_size_hw, metavar="WxH",
                   help="active: generated size, width x height")
    r.add_argument("--screen-hz", dest="screen_hz", type=float, help="passive: screen grabs/s")
    r.add_argument("--writers", type=int, help="writer threads (default 2)")
    r.add_argument("--queue", type=int, help="pairs buffered for writers (default 64)")
    r.add_argument("--format", choices=["tiff", "png"], help="frame files (default tiff)")
    r.add_argument("--seed", type=int)
    add_config_arguments(r)

    c = sub.add_parser("calibrate", help="measure latency, region of interest, exposure drift")
    c.add_argument("what", choices=["latency", "roi", "exposure", "all"])
    c.add_argument("--camera", default="0")
    c.add_argument("--screen", default="1")
    c.add_argument("--out", type=Path, default=Path("calibration.json"),
                   help="calibration file to write (merged with an existing one; its folder is "
                   "created; each part is saved as soon as it is measured)")
    c.add_argument("--flashes", type=int, default=12, help="latency: black/white cycles")
    c.add_argument("--hold-ms", type=float, default=300.0, help="time each pattern stays up")
    c.add_argument("--roi", type=_box, help="roi: accept this x,y,w,h instead of searching")
    c.add_argument("--exposure-s", type=float, default=3.0, help="exposure: watch this long")
    c.add_argument("--drift-threshold", type=float, default=0.02, help="exposure: warn above")

    i = sub.add_parser("info", help="summarise a recording")
    i.add_argument("folder", type=Path)

    b = sub.add_parser("bench", help="benchmark with the simulated rig on an X display (Xvfb)")
    b.add_argument("--seconds", type=float, default=10.0)
    b.add_argument("--camera-size", dest="camera_hw", type=_size_hw, default=(720, 1280),
                   metavar="WxH", help="simulated camera, width x height (default 1280x720)")
    b.add_argument("--latency-ms", type=float, default=80.0)
    b.add_argument("--rate", type=float, default=30.0)
    b.add_argument("--xvfb", action="store_true", help="start a private 1920x1080 Xvfb")
    return p


def _record(args: argparse.Namespace, state: dict[str, Any]) -> int:
    from acquire.config import RecordConfig
    from acquire.session import record
    from apps.cli import load_command_config, print_config
    from mcnn.config_io import parse_overrides, set_dotted, validate

    flags = {key: getattr(args, key) for key in _RECORD_FLAGS}
    # File, then flags; then --set on the validated result, so that --set camera.fps=... refines a
    # camera given as shorthand text ("sim:...") in the file or on the command line.
    config = load_command_config(RecordConfig, args.config, argparse.Namespace(set=[]), flags)
    if args.set:
        data = config.model_dump(mode="json")
        for key, value in parse_overrides(args.set).items():
            set_dotted(data, key, value)
        config = validate(RecordConfig, data, "--set")
    if args.print_config:
        print_config(config)
        return 0

    def progress(s: dict[str, Any]) -> None:
        state["progress_shown"] = True
        skew = "-" if s["skew_median_ms"] is None else \
            f"{s['skew_median_ms']:.1f}/{s['skew_p95_ms']:.1f} ms"
        print(f"\rpairs {s['pairs']}  {s['pairs_per_s']:.1f}/s  drops {s['dropped']}  "
              f"flagged {s['flagged']}  skew med/p95 {skew}   ", end="", file=sys.stderr,
              flush=True)

    def on_start(recorder: Any) -> None:
        handler = lambda *_: recorder.request_stop()  # noqa: E731
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    folder, summary = record(config, progress=progress, on_start=on_start)
    print(file=sys.stderr)
    state["progress_shown"] = False
    print(f"recorded {summary['pairs']} pairs in {folder} ({summary['pairs_per_s']} pairs/s, "
          f"{summary['dropped']} dropped, stop: {summary['stop_reason']})")
    if summary["dropped"]:
        print(f"warning: {summary['dropped']} pairs were dropped because the disk writers fell "
              "behind; lower --rate or add --writers", file=sys.stderr)
    reason = summary["stop_reason"]
    if reason.startswith(("disk full", "source error", "writing pair")):
        print(f"{PROG}: error: {reason}", file=sys.stderr)
        return 1
    return 0


def _check_writable(path: Path) -> None:
    """Fail before measuring, not after: create the folder of ``path`` and check we can write."""
    if path.is_dir():
        raise UserError(f"--out {path} is a folder; give a file, e.g. {path / 'calibration.json'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {path}: cannot create folder {path.parent} "
                        f"({exc.strerror or exc})") from None
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"--out {path}: not writable")


def _calibrate(args: argparse.Namespace, state: dict[str, Any]) -> int:
    import numpy as np

    from acquire.config import DevicesConfig
    from acquire.session import display_for
    from acquire.sources.base import SourceError, StreamingSource
    from acquire.sources.spec import build_camera, build_screen
    from calibration import procedures
    from mcnn.config_io import validate
    from mcnn.data.recording import CalibrationResult, RoiCalibration

    devices = validate(DevicesConfig, {"camera": args.camera, "screen": args.screen})
    _check_writable(args.out)
    result = CalibrationResult.load(args.out) if args.out.exists() else CalibrationResult()
    screen = build_screen(devices.screen)
    camera = build_camera(devices.camera, screen)
    if not isinstance(camera, StreamingSource):
        raise UserError("calibration needs a streaming camera")
    screen.open()
    display = display_for(screen)
    hold = args.hold_ms / 1e3
    saved: list[str] = []

    def keep(part: str) -> None:  # what is measured is on disk before the next step can fail
        result.save(args.out)
        saved.append(part)

    try:
        camera.open()
        result.camera, result.screen = camera.info(), screen.info()
        if args.what in ("latency", "all"):
            result.latency = procedures.measure_latency(display, camera, flashes=args.flashes,
                                                        hold_s=hold)
            keep("latency")
            print(f"latency: median {result.latency.median_ms:.1f} ms, p95 "
                  f"{result.latency.p95_ms:.1f} ms over {result.latency.count} steps")
        latency_s = (result.latency.p95_ms / 1e3 + 0.03) if result.latency else 0.5 * hold
        if args.what in ("roi", "all"):
            if args.roi is not None:
                result.roi = RoiCalibration(roi=args.roi, method="given")
            else:
                result.roi = procedures.measure_roi(display, camera,
                                                    hold_s=max(hold, latency_s + 0.1),
                                                    latency_s=latency_s)
            keep("roi")
            print(f"roi: {result.roi.roi} ({result.roi.method})")
        if args.what in ("exposure", "all"):
            roi = result.roi.roi if result.roi else None
            exposure, dark = procedures.measure_exposure(
                display, camera, duration_s=args.exposure_s, threshold=args.drift_threshold,
                roi=roi, latency_s=latency_s)
            dark_path = args.out.with_name(args.out.stem + "_dark.npy")
            np.save(dark_path, dark)
            exposure.dark_frame = dark_path.name
            result.exposure = exposure
            keep("exposure")
            print(f"exposure: drift {100 * exposure.drift_fraction:.2f} %, colour drift "
                  f"{100 * exposure.colour_drift_fraction:.2f} %, dark level "
                  f"{exposure.dark_level:.1f}")
            if exposure.drifting:
                print("warning: exposure or white balance drifts; lock them in the camera "
                      "settings", file=sys.stderr)
    except (ValueError, SourceError) as exc:
        if saved:  # one line that also says what was kept
            raise UserError(f"{exc} (kept {', '.join(saved)} in {args.out})") from exc
        raise
    except BaseException:
        if saved:
            logging.getLogger(PROG).error("kept %s in %s", ", ".join(saved), args.out)
        raise
    finally:
        camera.close()
        if display is not screen:
            display.close()
        screen.close()
    print(f"saved {args.out}")
    return 0


def _info(args: argparse.Namespace, state: dict[str, Any]) -> int:
    import statistics

    from mcnn.data.recording import SUMMARY, read_manifest, read_metadata

    meta = read_metadata(args.folder)
    entries = read_manifest(args.folder)
    skews = sorted(abs(e.skew_ms) for e in entries)
    times = sorted(e.t_camera_s for e in entries)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    info: dict[str, Any] = {
        "folder": str(args.folder), "mode": meta.mode, "started": meta.started_iso,
        "camera": meta.camera.get("name"), "screen": meta.screen.get("name"),
        "pairs": len(entries), "flagged": sum(1 for e in entries if e.flags),
        "duration_s": round(span, 2),
        "pairs_per_s": round((len(entries) - 1) / span, 2) if span > 0 else None,
        "skew_median_ms": round(statistics.median(skews), 3) if skews else None,
        "skew_p95_ms": round(skews[int(0.95 * (len(skews) - 1))], 3) if skews else None,
        "latency_ms_used": meta.latency_ms_used,
        "clean_stop": (args.folder / SUMMARY).exists()}
    if not entries:
        info["note"] = "no complete pairs in manifest.jsonl (the recorder stopped before the " \
            "first pair was written)"
    print(json.dumps(info, indent=2, allow_nan=False))
    return 0


def _bench(args: argparse.Namespace, state: dict[str, Any]) -> int:
    import shutil

    from calibration.bench import run_bench

    if args.xvfb and shutil.which("Xvfb") is None:
        raise UserError("Xvfb not found: apt-get install xvfb")
    print(json.dumps(run_bench(seconds=args.seconds, camera_hw=args.camera_hw,
                               latency_ms=args.latency_ms, rate_hz=args.rate,
                               start_xvfb=args.xvfb), indent=2))
    return 0


def _error(message: str) -> None:
    for line in message.splitlines() or [""]:
        print(f"{PROG}: error: {line}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    from acquire.sources.base import SourceError

    try:
        args = build_parser().parse_args(argv)
    except UserError as exc:
        _error(str(exc))
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format=f"{PROG}: %(levelname)s: %(message)s")
    handlers = {"record": _record, "calibrate": _calibrate, "info": _info, "bench": _bench}
    state: dict[str, Any] = {"progress_shown": False}
    try:
        return handlers[args.command](args, state)
    except (UserError, SourceError, ValueError, FileExistsError, FileNotFoundError,
            NotADirectoryError, PermissionError) as exc:
        if state["progress_shown"]:
            print(file=sys.stderr)  # end the progress line
        _error(str(exc))
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
