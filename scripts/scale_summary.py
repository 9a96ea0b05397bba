#!/usr/bin/env python3
"""Summarise the results of scripts/bench_scale.sh as Markdown tables.

Usage: python3 scripts/scale_summary.py OUT_DIR

* input: each instance's Redis input (deliveries of other instances received from
  Redis, `chat_bus_received_total`) and what it published, per number of
  instances, median and spread of the runs; with the messages acknowledged.
* spread: 1 and 4 instances behind nginx, rooms spread over all of them:
  send → delivery p50 / p99 at 1,000 msgs/s and messages acked/s flat out,
  median (min–max), and 4 ÷ 1 of the medians.
* rolling: one line per run of the rolling restart under load.
* cost: CPU per 1,000 messages of each part at 5,000 msgs/s on one instance
  (scripts/cpu_sample.py), and WAL bytes per message, median (min–max).
"""

import csv
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from bench_summary import cell  # the same median (min–max) cells as the targets' tables


def figure(run, name):
    for f in run["service"]["figures"]:
        if f["name"] == name:
            return f["value"]
    return None


def latency(run, name, p):
    for l in run["service"]["latencies"]:
        if l["name"] == name:
            return l[f"{p}_ms"]
    return None


def input_table(out):
    path = out / "input.tsv"
    if not path.exists():
        return
    rows = list(csv.DictReader(path.open(), delimiter="\t"))
    received = defaultdict(list)  # (n, mode) -> per-instance values over runs
    published = defaultdict(list)
    for row in rows:
        key = (int(row["instances"]), row["mode"])
        received[key].append(int(row["received"]))
        published[key].append(int(row["published"]))
    acked = defaultdict(list)  # (n, mode) -> total acked per run
    for file in out.glob("input-*.json"):
        _, n, mode, run, _ = file.stem.split("-")
        acked[(int(n), mode, int(run))].append(figure(json.loads(file.read_text()), "messages acked"))
    totals = defaultdict(list)
    for (n, mode, _), values in acked.items():
        totals[(n, mode)].append(sum(values))
    print("| instances | rooms | messages acked (all instances) | Redis input per instance (deliveries) | published per instance (envelopes) |")
    print("|---|---|---|---|---|")
    for key in sorted(received):
        n, mode = key
        rooms = "each instance its own" if mode == "own" else "spread through nginx"
        print(f"| {n} | {rooms} | {cell(totals[key])} | {cell(received[key])} | {cell(published[key])} |")
    print()


def spread_table(out):
    runs = defaultdict(list)
    for file in sorted(out.glob("spread-*.json")):
        _, n, kind, _ = file.stem.split("-")
        runs[(int(n), kind)].append(json.loads(file.read_text()))
    if not runs:
        return
    print("| instances behind nginx | 1,000 msgs/s: send→delivery p50 (ms) | p99 (ms) | deliveries lost | flat out: acked/s | load at the end |")
    print("|---|---|---|---|---|---|")
    medians = {}
    splits = []
    for n in sorted({n for n, _ in runs}):
        lat, flat = runs.get((n, "latency"), []), runs.get((n, "flat"), [])
        p50 = [latency(r, "send→delivery", "p50") for r in lat]
        p99 = [latency(r, "send→delivery", "p99") for r in lat]
        lost = [figure(r, "deliveries expected") - figure(r, "deliveries") for r in lat + flat]
        acked = [figure(r, "messages acked/s") for r in flat]
        loads = "; ".join(str(r.get("load_average")) for r in lat + flat)
        medians[n] = (statistics.median(p99) if p99 else None, statistics.median(acked) if acked else None)
        print(f"| {n} | {cell(p50)} | {cell(p99)} | {cell(lost)} | {cell(acked)} | {loads} |")
        same = [latency(r, "send→delivery, same instance", "p99") for r in lat]
        across = [latency(r, "send→delivery, across instances", "p99") for r in lat]
        if all(v is not None for v in same + across) and same:
            splits.append((n, same, across, [a / b for a, b in zip(across, same)]))
    if 1 in medians and 4 in medians and all(medians[1]) and all(medians[4]):
        print()
        print(f"4 ÷ 1 instance: p99 {medians[4][0] / medians[1][0]:.2f} ×, throughput {medians[4][1] / medians[1][1]:.2f} ×")
    for n, same, across, ratio in splits:
        print()
        print(f"{n} instances, in the same runs: send→delivery p99 with sender and receiver on one instance "
              f"{cell(same)} ms, on different instances {cell(across)} ms; across ÷ same {cell(ratio)} ×")
    print()


def spread_cpu_table(out):
    """CPU and waiting for a core per part at 1,000 msgs/s, 1 vs 4 instances."""
    for kind, title in (("latency", "1,000 msgs/s"), ("flat", "flat out")):
        rows = defaultdict(lambda: ([], []))
        for file in sorted(out.glob(f"spread-*-{kind}-*.cpu")):
            n = int(file.name.split("-")[1])
            for part, row in json.loads(file.read_text()).items():
                if part == "machine":
                    continue
                rows[(n, part)][0].append(row["cpu_ms_per_1000_messages"])
                if "wait_for_a_core_us_per_message" in row:
                    rows[(n, part)][1].append(row["wait_for_a_core_us_per_message"])
        if not rows:
            continue
        print(f"{title}, behind nginx:")
        print()
        print("| instances | part | CPU ms per 1,000 messages | waiting for a core, µs per message |")
        print("|---|---|---|---|")
        for (n, part), (cpu, wait) in sorted(rows.items()):
            print(f"| {n} | {part} | {cell(cpu)} | {cell(wait)} |")
        print()


def own_flat_table(out):
    totals = defaultdict(lambda: defaultdict(float))  # n -> run -> acked/s summed
    for file in out.glob("own-flat-*.json"):
        _, _, n, run, _ = file.stem.split("-")
        totals[int(n)][int(run)] += figure(json.loads(file.read_text()), "messages acked/s")
    if not totals:
        return
    print("| instances, each its own rooms | flat out: messages acked/s, all instances |")
    print("|---|---|")
    for n in sorted(totals):
        print(f"| {n} | {cell(list(totals[n].values()))} |")
    print()


def rolling_table(out):
    files = sorted(f for f in out.glob("rolling-*.json") if f.stem.split("-")[-1].isdigit())
    if not files:
        return
    print("| run | messages confirmed | deliveries checked | reconnections | sent again | closes | failures |")
    print("|---|---|---|---|---|---|---|")
    for file in files:
        r = json.loads(file.read_text())
        closes = ", ".join(f"{k}: {v}" for k, v in sorted(r["closes"].items()))
        print(f"| {file.stem.split('-')[-1]} | {r['messages_confirmed']:,} | {r['deliveries_checked']:,} | "
              f"{r['reconnections']} | {r['messages_sent_again']} | {closes} | {len(r['failures'])} |")
    print()


def cost_table(out):
    runs = sorted(out.glob("cost-*.cpu.json"))
    if not runs:
        return
    parts = defaultdict(lambda: ([], []))
    wal = []
    for file in runs:
        n = file.name.split("-")[1].split(".")[0]
        for part, row in json.loads(file.read_text()).items():
            if part != "machine":
                parts[part][0].append(row["cpu_ms_per_1000_messages"])
                parts[part][1].append(100 * row["share"])
        wal_file = out / f"cost-{n}.wal"
        acked = figure(json.loads((out / f"cost-{n}.json").read_text()), "messages acked")
        if wal_file.exists() and acked:
            wal.append(float(wal_file.read_text()) / acked)
    print("| part | CPU ms per 1,000 messages (10 deliveries each) | share of the machine (%) |")
    print("|---|---|---|")
    for part in ("chat-room", "postgres", "redis", "other"):
        if part in parts:
            print(f"| {part} | {cell(parts[part][0])} | {cell(parts[part][1])} |")
    if wal:
        print()
        print(f"WAL per message: {cell(wal)} bytes")
    print()


def main(out):
    out = Path(out)
    input_table(out)
    spread_table(out)
    spread_cpu_table(out)
    own_flat_table(out)
    rolling_table(out)
    cost_table(out)


if __name__ == "__main__":
    main(sys.argv[1])
