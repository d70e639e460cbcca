"""Engine store benchmarks: CDR commits/s (SQLite synchronous=FULL vs NORMAL, PostgreSQL), hopper claims/s
(one node, two nodes racing), claim latency when many higher-priority leads wait for later, CSV import rows/s.

    python benchmarks/store_hopper.py [--leads 20000] [--waiting 50000]
                                      [--postgres postgresql://postgres@127.0.0.1/dialer_store_test]

Prints the figures, writes benchmarks/results/store_hopper.json and store_hopper.png.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from dialer.leads_csv import import_leads
from dialer.storage import NewLead, Store, open_store
from dialer.storage.sqlite import SqliteStore

RESULTS = Path(__file__).resolve().parent / "results"
T0 = datetime(2026, 6, 10, 16, 0, tzinfo=timezone.utc)
CLAIM_BATCH = 10


def new_leads(count: int, start: int = 0) -> list[NewLead]:
    return [NewLead(e164=f"+1{2025550000 + index:010d}", raw_number=str(index), time_zones=("America/New_York",),
                    priority=index % 3) for index in range(start, start + count)]


async def cdr_commits_per_second(store: Store, calls: int) -> float:
    start = time.perf_counter()
    for index in range(calls):
        call_id = f"bench-{uuid.uuid4().hex}"
        await store.open_cdr(call_id, "bench", index, "t1", T0)
        await store.close_cdr(call_id, T0 + timedelta(seconds=30), "answered", sip_code=200, hangup_by="remote")
    return 2 * calls / (time.perf_counter() - start)


async def fill(store: Store, campaign: str, count: int) -> None:
    for offset in range(0, count, 5000):
        await store.add_leads(campaign, new_leads(min(5000, count - offset), offset), T0)


async def claims(stores: list[Store], campaign: str, total: int) -> tuple[float, list[float]]:
    """Leads claimed per second with every store claiming at once, and each claim's latency in ms."""
    latencies: list[float] = []

    async def drain(store: Store) -> None:
        while True:
            began = time.perf_counter()
            batch = await store.claim_leads(campaign, T0 + timedelta(days=1), CLAIM_BATCH)
            latencies.append((time.perf_counter() - began) * 1000)
            if not batch:
                return

    start = time.perf_counter()
    await asyncio.gather(*(drain(store) for store in stores))
    return total / (time.perf_counter() - start), latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def claim_latency_behind_waiting_leads(store: Store, waiting: int, due: int) -> list[float]:
    """`waiting` priority-1 leads due tomorrow, `due` priority-0 leads due now: per-claim latency in ms."""
    for offset in range(0, waiting, 5000):
        await store.add_leads("waiting", new_leads(min(5000, waiting - offset), 10**6 + offset), T0 + timedelta(days=2))
    await store.add_leads("waiting", new_leads(due, 2 * 10**6), T0)
    latencies = []
    while True:
        began = time.perf_counter()
        batch = await store.claim_leads("waiting", T0 + timedelta(hours=1), CLAIM_BATCH)
        latencies.append((time.perf_counter() - began) * 1000)
        if not batch:
            return latencies


async def import_rows_per_second(store: Store, rows: int) -> float:
    text = "number,name\n" + "".join(f"+1{2025550000 + i:010d},lead {i}\n" for i in range(rows))
    start = time.perf_counter()
    summary = await import_leads(store, "import-bench", io.StringIO(text, newline=""), T0)
    elapsed = time.perf_counter() - start
    assert summary.imported == rows, summary
    return rows / elapsed


async def bench_backend(label: str, open_one, leads: int, calls: int, import_rows: int, waiting: int) -> dict:
    one = await open_one("n1")
    two = await open_one("n2")
    try:
        figures = {"cdr_commits_per_s": await cdr_commits_per_second(one, calls)}
        await fill(one, "single", leads)
        rate, latencies = await claims([one], "single", leads)
        figures |= {"claims_one_node_leads_per_s": rate, "claim_p50_ms": percentile(latencies, 0.5),
                    "claim_p99_ms": percentile(latencies, 0.99)}
        await fill(one, "race", leads)
        rate, latencies = await claims([one, two], "race", leads)
        figures |= {"claims_two_nodes_leads_per_s": rate, "claim_two_nodes_p99_ms": percentile(latencies, 0.99)}
        figures["csv_import_rows_per_s"] = await import_rows_per_second(one, import_rows)
        latencies = await claim_latency_behind_waiting_leads(one, waiting, 1000)
        figures |= {"claim_behind_waiting_p50_ms": percentile(latencies, 0.5),
                    "claim_behind_waiting_p99_ms": percentile(latencies, 0.99)}
    finally:
        await one.close()
        await two.close()
    print(f"{label}: " + ", ".join(f"{k} {v:,.1f}" for k, v in figures.items()), flush=True)
    return figures


async def main(args) -> dict:
    results: dict[str, dict] = {"settings": {"leads": args.leads, "calls": args.calls, "claim_batch": CLAIM_BATCH,
                                             "import_rows": args.import_rows, "waiting": args.waiting}}
    with tempfile.TemporaryDirectory() as directory:
        for mode in ("FULL", "NORMAL"):
            path = Path(directory) / f"{mode}.db"
            results[f"sqlite_{mode.lower()}"] = await bench_backend(
                f"SQLite synchronous={mode}",
                lambda node, path=path, mode=mode: SqliteStore.open(path, node=node, synchronous=mode),
                args.leads, args.calls, args.import_rows, args.waiting,
            )
    if args.postgres:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(args.postgres)
        await admin.execute(f"CREATE SCHEMA {schema}")
        separator = "&" if "?" in args.postgres else "?"
        try:
            results["postgresql"] = await bench_backend(
                "PostgreSQL", lambda node: open_store(f"{args.postgres}{separator}search_path={schema}", node=node),
                args.leads, args.calls, args.import_rows, args.waiting,
            )
        finally:
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")
            await admin.close()
    return results


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = [key for key in results if key != "settings"]
    metrics = ["cdr_commits_per_s", "claims_one_node_leads_per_s", "claims_two_nodes_leads_per_s",
               "csv_import_rows_per_s", "claim_p50_ms", "claim_behind_waiting_p50_ms"]
    figure, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 4))
    for axis, metric in zip(axes, metrics):
        values = [results[b][metric] for b in backends]
        axis.bar(backends, values, color=["tab:blue", "tab:cyan", "tab:orange"][: len(backends)])
        axis.set_title(metric.replace("_", " "), fontsize=9)
        axis.tick_params(axis="x", labelrotation=20, labelsize=8)
        for x, value in enumerate(values):
            axis.annotate(f"{value:,.1f}" if value < 100 else f"{value:,.0f}", (x, value), ha="center", va="bottom", fontsize=8)
    figure.suptitle("dialer store (2 shared cores, other work running)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=20_000, help="leads per claim run (default 20000)")
    parser.add_argument("--calls", type=int, default=500, help="CDRs opened and closed (default 500)")
    parser.add_argument("--import-rows", type=int, default=20_000, help="CSV rows imported (default 20000)")
    parser.add_argument("--waiting", type=int, default=50_000,
                        help="higher-priority leads due later, behind which 1000 due leads are claimed (default 50000)")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/dialer_store_test",
                        help="database for the PostgreSQL run ('' to skip)")
    arguments = parser.parse_args()
    figures = asyncio.run(main(arguments))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "store_hopper.json").write_text(json.dumps(figures, indent=2))
    plot(figures, RESULTS / "store_hopper.png")
    print(f"wrote {RESULTS / 'store_hopper.json'} and {RESULTS / 'store_hopper.png'}")
