"""``python -m bench [--small] [--output FILE]``: the whole benchmark, one command.

Makes a throwaway PostgreSQL cluster, seeds it, times each server's start-up, starts the
service, the reference (the limit) and the stock strawberry server, checks that they
answer alike (exit 1 if not), measures them side by side (``bench/suite.py``), prints
the table and writes it to a file. With ``--scale``: reads against one process or two,
on the primary or a replica (``bench/scale.py``), printed (written only with
``--output``). With ``--audit N``: the audit chain's sequencing and verification over N
entries (``bench/audit.py``), printed likewise. With ``--live``: subscriptions' delivery
latency with and without 1,000 idle subscribers, and their memory (``bench/live.py``),
printed and written to bench/results/live.md and live.json (with ``--small``: 20 idle
subscribers and 3 writes, printed only).
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from collections import Counter
from pathlib import Path

import orjson

from bench import audit, check, live, scale, suite
from bench.live_report import render as render_live
from bench.live_report import to_json as live_json
from bench.profile import FULL, SMALL, Profile
from bench.progress import note
from bench.report import render
from bench.subscribers import LiveError

RESULTS = Path(__file__).with_name("results")


def _log_problems(log: Path) -> Counter[str]:
    """The service's log lines at WARNING or above, counted by level, logger and message."""
    found: Counter[str] = Counter()
    for line in log.read_text().splitlines():
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            found[f"(not JSON) {line[:200]}"] += 1
            continue
        if record.get("level") in ("WARNING", "ERROR", "CRITICAL"):
            # The exception's own line (the last of the traceback) says what went wrong.
            cause = (record.get("exc_info") or "").strip().rpartition("\n")[2]
            message = f"{record['level']} {record.get('logger')}: {record.get('message')}"
            found[" ".join(f"{message} {cause}".split())] += 1
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--small", action="store_true", help="small data and short rounds (CI: under a minute)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write the table (default: bench/results/latest.md, or "
        "bench/results/small.md with --small; with --scale: printed only)",
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        help="reads against one process or two, on the primary or a replica",
    )
    parser.add_argument(
        "--audit",
        type=int,
        metavar="N",
        help="sequence and verify an audit trail of N entries (printed only, like --scale)",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="subscriptions' delivery latency with and without 1,000 idle subscribers, and "
        "their memory (written to bench/results/live.md and live.json; with --small: 20 "
        "idle subscribers, printed only)",
    )
    args = parser.parse_args(argv)
    profile = SMALL if args.small else FULL
    output = args.output or RESULTS / ("small.md" if args.small else "latest.md")
    if args.live:
        return _live(profile, args.output, command=_command())
    command = _command()
    try:
        if args.audit:
            text = asyncio.run(audit.run(args.audit)).render(command)
        elif args.scale:
            text = scale.render(asyncio.run(scale.run(profile, command, _log_problems)))
        else:
            text = render(asyncio.run(suite.run(profile, command, _log_problems)))
    except check.MismatchError as mismatch:
        print(f"bench: the endpoints disagree, nothing measured: {mismatch}", file=sys.stderr)
        return 1
    print(text)
    if (args.scale or args.audit) and args.output is None:
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    note(f"written to {output}")
    return 0


def _command() -> str:
    return shlex.join(["uv", "run", "python", "-m", "bench", *sys.argv[1:]])


def _live(profile: Profile, output: Path | None, *, command: str) -> int:
    plan = live.SMALL if profile is SMALL else live.FULL
    try:
        results = asyncio.run(live.run(profile, plan, command, _log_problems))
    except LiveError as failure:
        print(f"bench: live updates misbehaved, nothing measured: {failure}", file=sys.stderr)
        return 1
    text = render_live(results)
    print(text)
    if output is None and profile is SMALL:
        return 0
    output = output or RESULTS / "live.md"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    output.with_suffix(".json").write_bytes(live_json(results))
    note(f"written to {output} and {output.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
