"""`dialer recordings purge [--dry-run]`: delete recordings older than the retention (never below the pack minimum)."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

from dialer.compliance_cli import fail
from compliance.numbers import mask_number
from compliance.packs import PackError, UnknownPack, load_pack
from compliance.retention import Recording, RetentionError, keep_days, recordings_to_delete

RECORDING_SUFFIXES = (".wav", ".mp3", ".ogg", ".flac")


def register(subparsers) -> None:
    recordings = subparsers.add_parser("recordings", help="call recordings")
    actions = recordings.add_subparsers(dest="recordings_action", metavar="ACTION", required=True)
    purge = actions.add_parser("purge", help="delete recordings past their retention")
    purge.add_argument("--dir", type=Path, default=Path("var/recordings"), help="recordings directory")
    purge.add_argument("--pack", required=True, help="rule pack whose minimum retention applies")
    purge.add_argument("--keep-days", type=int, help="days to keep (default and floor: the pack's minimum)")
    purge.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    purge.set_defaults(handler=purge_recordings)


def _scan(directory: Path) -> list[Recording]:
    return [
        Recording(path, datetime.fromtimestamp(path.stat().st_mtime, timezone.utc))
        for path in directory.rglob("*")
        if path.is_file() and path.suffix.lower() in RECORDING_SUFFIXES
    ]


def _shown(path: Path) -> str:
    # Recording file names may carry the callee's number.
    return str(path.with_name(mask_number(path.stem) if path.stem.lstrip("+").isdigit() else path.stem).with_suffix(path.suffix))


def purge_recordings(args) -> int:
    try:
        days = keep_days(load_pack(args.pack), args.keep_days)
    except (UnknownPack, PackError, RetentionError) as exc:
        return fail(str(exc))
    if not args.dir.is_dir():
        return fail(f"--dir: {args.dir} is not a directory")
    doomed = recordings_to_delete(_scan(args.dir), days, datetime.now(timezone.utc))
    for recording in doomed:
        print(f"{'would delete' if args.dry_run else 'deleting'} {_shown(recording.path)} ({recording.finished_at.date()})")
        if not args.dry_run:
            try:
                recording.path.unlink()
            except OSError as exc:
                print(f"cannot delete {_shown(recording.path)}: {exc.strerror}", file=sys.stderr)
    print(f"{len(doomed)} recordings {'would be ' if args.dry_run else ''}deleted (kept {days} days)")
    return 0
