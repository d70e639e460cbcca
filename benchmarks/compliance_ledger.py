"""Compliance ledger benchmarks: durable reservations/s (SQLite one process, PostgreSQL 8 connections),
dry-run checks/s (pure rules, history in memory), reservation p99 with a large ledger (default 10 million rows).

    python benchmarks/compliance_ledger.py [--rows 10000000] [--postgres postgresql://postgres@127.0.0.1/postgres]

Prints the figures, writes benchmarks/results/compliance_ledger.json and compliance_ledger.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from compliance.gate import CampaignContext, Gate
from compliance.ledger_postgres import PostgresLedger
from compliance.ledger_sqlite import SqliteLedger
from compliance.numbers import normalize
from compliance.packs import load_pack
from compliance.rules import AttemptRecord, History, decide

RESULTS = Path(__file__).resolve().parent / "results"
NOW = datetime(2026, 6, 10, 16, 0, tzinfo=timezone.utc)  # 12:00 in New York
US = load_pack("us")
CAMPAIGN = CampaignContext("bench", "+12025550199", US)


def numbers(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [f"+1202{rng.randrange(2, 10)}{rng.randrange(0, 10**6):06d}" for _ in range(count)]


async def reservations_per_second(gate: Gate, count: int, concurrency: int) -> float:
    # The engine passes the ParsedNumber stored with the lead (parsed once at import), so parsing is not timed.
    targets = [normalize(n) for n in numbers(count, seed=7)]
    queue = iter(enumerate(targets))

    async def worker():
        for index, number in queue:
            await gate.reserve(number, CAMPAIGN, NOW + timedelta(microseconds=index))

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - start)


def _postgres_process(dsn: str, schema: str, connections: int, count: int, seed: int) -> tuple[float, float, int]:
    """One engine node: `connections` pooled connections reserving `count` numbers; (start, end, count)."""

    async def run() -> tuple[float, float, int]:
        gate = Gate(await PostgresLedger.open(dsn, pool_size=connections, schema=schema))
        targets = [normalize(n) for n in numbers(count, seed=seed)]
        queue = iter(enumerate(targets))

        async def worker():
            for index, number in queue:
                await gate.reserve(number, CAMPAIGN, NOW + timedelta(microseconds=index))

        start = time.time()
        await asyncio.gather(*(worker() for _ in range(64)))
        end = time.time()
        await gate.close()
        return start, end, count

    return asyncio.run(run())


def postgres_processes_per_second(dsn: str, schema: str, processes: int, count: int) -> float:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    per_process = count // processes
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        spans = list(pool.map(_postgres_process, [dsn] * processes, [schema] * processes,
                              [8 // processes] * processes, [per_process] * processes, range(100, 100 + processes)))
    return sum(c for _, _, c in spans) / (max(e for _, e, _ in spans) - min(s for s, _, _ in spans))


def checks_per_second(count: int) -> float:
    number = normalize("+12025550123")
    history = History(attempts=(AttemptRecord(NOW - timedelta(hours=30), "a"), AttemptRecord(NOW - timedelta(hours=3), "b")))
    start = time.perf_counter()
    for index in range(count):
        decide(number, US, history, NOW + timedelta(seconds=index % 3600), campaign="bench")
    return count / (time.perf_counter() - start)


def fill_sqlite(path: str, rows: int) -> None:
    """Bulk-load `rows` past attempts over 30 days on ~rows/20 numbers, then build the indexes."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("DROP INDEX IF EXISTS attempts_number_at")
    db.execute("DROP INDEX IF EXISTS attempts_campaign_at")
    pool = numbers(max(rows // 20, 1), seed=3)
    start_us = int((NOW - timedelta(days=30)).timestamp() * 1e6)
    span = 30 * 86400 * 10**6
    rng = random.Random(5)
    batch = 200_000
    for offset in range(0, rows, batch):
        chunk = min(batch, rows - offset)
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO attempts (number, campaign, at_us, outcome, source) VALUES (?, 'old', ?, 'answered', 'bench')",
            ((pool[rng.randrange(len(pool))], start_us + rng.randrange(span)) for _ in range(chunk)),
        )
        db.execute("COMMIT")
    db.execute("CREATE INDEX attempts_number_at ON attempts (number, at_us, campaign)")
    db.execute("CREATE INDEX attempts_campaign_at ON attempts (campaign, at_us, outcome)")
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


async def reserve_latencies(gate: Gate, count: int, pool: list[str]) -> list[float]:
    rng = random.Random(11)
    latencies = []
    pool = [normalize(n) for n in pool]
    for index in range(count):
        start = time.perf_counter()
        await gate.reserve(rng.choice(pool), CAMPAIGN, NOW + timedelta(seconds=index))
        latencies.append((time.perf_counter() - start) * 1000)
    return latencies


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reservations", type=int, default=20000)
    parser.add_argument("--checks", type=int, default=200000)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--skip", nargs="*", default=[], choices=["sqlite", "postgres", "checks", "large"])
    args = parser.parse_args()
    results: dict = {"machine_note": "2 shared cores, other work running", "at": datetime.now(timezone.utc).isoformat()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if "checks" not in args.skip:
            results["dry_run_checks_per_s"] = checks_per_second(args.checks)
            print(f"dry-run checks: {results['dry_run_checks_per_s']:,.0f}/s (goal 50,000/s)")
        if "sqlite" not in args.skip:
            gate = Gate(await SqliteLedger.open(f"{tmp}/rate.db"))
            results["sqlite_reservations_per_s"] = await reservations_per_second(gate, args.reservations, 64)
            await gate.close()
            print(f"SQLite durable reservations, one process: {results['sqlite_reservations_per_s']:,.0f}/s (goal 5,000/s)")
            gate = Gate(await SqliteLedger.open(f"{tmp}/rate-normal.db", synchronous="normal"))
            results["sqlite_reservations_per_s_synchronous_normal"] = await reservations_per_second(gate, args.reservations, 64)
            await gate.close()
            print(
                "SQLite reservations, synchronous=normal (survives kill -9, not power loss): "
                f"{results['sqlite_reservations_per_s_synchronous_normal']:,.0f}/s"
            )
        if "postgres" not in args.skip:
            admin = await asyncpg.connect(args.postgres)
            schema = f"bench_{int(time.time())}"
            try:
                ledger = await PostgresLedger.open(args.postgres, pool_size=8, schema=schema)
                gate = Gate(ledger)
                results["postgres_reservations_per_s_8_connections"] = await reservations_per_second(gate, args.reservations // 2, 64)
                await gate.close()
                results["postgres_reservations_per_s_2_processes_x_4_connections"] = await asyncio.to_thread(
                    postgres_processes_per_second, args.postgres, schema, 2, args.reservations // 2
                )
            finally:
                await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                await admin.close()
            print(f"PostgreSQL reservations, 8 connections: {results['postgres_reservations_per_s_8_connections']:,.0f}/s (goal 3,000/s)")
            print(
                "PostgreSQL reservations, 2 processes x 4 connections: "
                f"{results['postgres_reservations_per_s_2_processes_x_4_connections']:,.0f}/s"
            )
        if "large" not in args.skip:
            path = f"{tmp}/large.db"
            ledger = await SqliteLedger.open(path)
            await ledger.close()
            start = time.perf_counter()
            fill_sqlite(path, args.rows)
            results["large_fill_s"] = time.perf_counter() - start
            empty = Gate(await SqliteLedger.open(f"{tmp}/empty.db"))
            await reserve_latencies(empty, 500, numbers(1000, seed=9))  # warm-up
            baseline = await reserve_latencies(empty, 5000, numbers(max(args.rows // 20, 1), seed=3))
            await empty.close()
            results["empty_reserve_ms"] = {"p50": p(baseline, 0.5), "p99": p(baseline, 0.99), "max": max(baseline)}
            results["empty_latencies_ms"] = baseline
            gate = Gate(await SqliteLedger.open(path))
            rows = await gate.ledger.attempts_count()
            pool = numbers(max(args.rows // 20, 1), seed=3)
            await reserve_latencies(gate, 500, pool)  # warm-up: page cache, first checkpoint
            latencies = await reserve_latencies(gate, 5000, pool)
            await gate.close()
            gate = Gate(await SqliteLedger.open(path, synchronous="normal"))
            relaxed = await reserve_latencies(gate, 5000, pool)
            await gate.close()
            results["large_reserve_ms_synchronous_normal"] = {"p50": p(relaxed, 0.5), "p99": p(relaxed, 0.99), "max": max(relaxed)}
            results["large_latencies_ms_synchronous_normal"] = relaxed
            results["large_rows"] = rows
            results["large_reserve_ms"] = {"p50": p(latencies, 0.5), "p99": p(latencies, 0.99), "max": max(latencies)}
            results["large_latencies_ms"] = latencies
            print(
                f"reserve with {rows:,} attempts in the SQLite ledger: p50 {results['large_reserve_ms']['p50']:.3f} ms, "
                f"p99 {results['large_reserve_ms']['p99']:.3f} ms (goal < 5 ms), filled in {results['large_fill_s']:.0f} s; "
                f"same run on an empty ledger: p50 {results['empty_reserve_ms']['p50']:.3f} ms, p99 {results['empty_reserve_ms']['p99']:.3f} ms; "
                f"same ledger with synchronous=normal: p50 {results['large_reserve_ms_synchronous_normal']['p50']:.3f} ms, "
                f"p99 {results['large_reserve_ms_synchronous_normal']['p99']:.3f} ms"
            )
    name = "compliance_ledger" if not args.skip else "compliance_ledger_" + "_".join(sorted({"checks", "sqlite", "postgres", "large"} - set(args.skip)))
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2))
    plot(results, RESULTS / f"{name}.png")
    print(f"wrote {RESULTS / (name + '.json')} and .png")


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = {k: v for k, v in {
        "SQLite reserve/s": results.get("sqlite_reservations_per_s"),
        "SQLite reserve/s (synchronous=normal)": results.get("sqlite_reservations_per_s_synchronous_normal"),
        "PostgreSQL reserve/s (8 conn)": results.get("postgres_reservations_per_s_8_connections"),
        "PostgreSQL reserve/s (2 proc x 4 conn)": results.get("postgres_reservations_per_s_2_processes_x_4_connections"),
        "dry-run checks/s": results.get("dry_run_checks_per_s"),
    }.items() if v}
    panels = [name for name, present in (("rates", bars), ("latency", "large_latencies_ms" in results)) if present]
    fig, axes = plt.subplots(1, len(panels), figsize=(8 * len(panels), 4.5), squeeze=False)
    for axis, panel in zip(axes[0], panels):
        if panel == "rates":
            axis.barh(list(bars), list(bars.values()))
            axis.set_xscale("log")
            axis.minorticks_off()
            for row, value in enumerate(bars.values()):
                axis.text(value, row, f" {value:,.0f}", va="center")
            axis.set_xlabel("per second, log scale (goals: SQLite 5k, PostgreSQL 3k, checks 50k)")
        else:
            for key, label in (
                ("empty_latencies_ms", "empty ledger"),
                ("large_latencies_ms", f"{results['large_rows']:,} attempts"),
                ("large_latencies_ms_synchronous_normal", f"{results['large_rows']:,} attempts, synchronous=normal"),
            ):
                values = sorted(results.get(key, []))
                if values:
                    axis.plot(values, [i / len(values) for i in range(len(values))], label=label)
            axis.axvline(5, color="red", linestyle="--", label="goal p99 5 ms")
            axis.axhline(0.99, color="grey", linewidth=0.5)
            axis.set_xscale("log")
            axis.set_xlabel("reserve latency, ms (one at a time, durable commit)")
            axis.set_ylabel("fraction of reservations")
            axis.legend()
    fig.suptitle("compliance ledger (2 shared cores, other work running)")
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    asyncio.run(main())
