#!/usr/bin/env python3
"""Summarise the chat-bench JSON files of scripts/bench_targets.sh.

Usage: python3 scripts/bench_summary.py [--runs] OUT_DIR

Files are grouped by scenario (`<scenario>-<n>.json`, n = run). For every
figure, every latency percentile and every service ÷ baseline ratio the runs
share, prints the median and the spread (min–max) of the runs, then the error
counts and load averages. Markdown, ready for docs/BENCHMARKS.md. With
--runs: one line per run instead, with the headline figures of each.

When both are present, `inbox` (the inbox socket) is also compared with
`inbox-rooms` (the same load over room sockets): the ratio of their medians.
"""

import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def fmt(value):
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def cell(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    median = statistics.median(values)
    if len(values) == 1:
        return fmt(median)
    return f"{fmt(median)} ({fmt(min(values))}–{fmt(max(values))})"


def rows_of(run):
    """(name, service value, baseline value, ratio) for one run."""
    service, baseline = run["service"], run.get("baseline") or {}
    base_figures = {f["name"]: f["value"] for f in baseline.get("figures", [])}
    base_latencies = {l["name"]: l for l in baseline.get("latencies", [])}
    ratios = run.get("ratios", {})
    for figure in service["figures"]:
        name = f'{figure["name"]} ({figure["unit"]})'
        yield name, figure["value"], base_figures.get(figure["name"]), ratios.get(figure["name"])
    for latency in service["latencies"]:
        base = base_latencies.get(latency["name"], {})
        for p in ("p50", "p90", "p99", "max"):
            key = f"{p}_ms"
            yield (
                f'{latency["name"]} {p} (ms)',
                latency.get(key),
                base.get(key),
                ratios.get(f'{latency["name"]} {p}'),
            )


# The figures that say most about a run, in the order printed by --runs.
HEADLINE = [
    "messages acked/s",
    "deliveries/s",
    "send→delivery p50",
    "send→delivery p99",
    "socket open p99",
    "closed by the server while held",
    "server RSS per socket",
    "server RSS per subscription",
    "newest page p99",
    "before= page requests/s",
    "before= page p50",
    "before= page p99",
]


def per_run(groups):
    print("| scenario | run | figure: service / baseline (×) | errors | load at the end |")
    print("|---|---|---|---|---|")
    for scenario, runs in groups.items():
        for n, run in enumerate(runs, 1):
            rows = {name.rsplit(" (", 1)[0]: row for name, *row in rows_of(run)}
            cells = []
            for name in HEADLINE:
                if name not in rows:
                    continue
                ours, theirs, ratio = rows[name]
                text = f"{name} {fmt(ours)}"
                if theirs is not None:
                    text += f" / {fmt(theirs)}"
                if ratio is not None:
                    text += f" ({fmt(ratio)}×)"
                cells.append(text)
            errors = sum((run["service"].get("errors") or {}).values())
            print(f"| {scenario} | {n} | {'; '.join(cells)} | {errors} | {run.get('load_average')} |")


# (scenario, the one it is compared with): the same load carried two ways.
PAIRS = [("inbox", "inbox-rooms")]


def medians(runs):
    """name -> median service value over the runs."""
    table = defaultdict(list)
    for run in runs:
        for name, ours, _, _ in rows_of(run):
            if ours is not None:
                table[name].append(ours)
    return {name: statistics.median(values) for name, values in table.items()}


def pair_ratios(groups):
    for ours, theirs in PAIRS:
        if ours not in groups or theirs not in groups:
            continue
        a, b = medians(groups[ours]), medians(groups[theirs])
        print(f"### {ours} ÷ {theirs} (service medians)\n")
        print(f"| figure | {ours} | {theirs} | {ours} ÷ {theirs} |")
        print("|---|---|---|---|")
        for name, value in a.items():
            if name not in b:
                continue
            ratio = value / b[name] if b[name] else None
            print(f"| {name} | {fmt(value)} | {fmt(b[name])} | {fmt(ratio)} |")
        print()


def main():
    args = sys.argv[1:]
    runs_only = "--runs" in args
    args = [a for a in args if a != "--runs"]
    if len(args) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    groups = defaultdict(list)
    for path in sorted(Path(args[0]).glob("*.json")):
        match = re.fullmatch(r"(.+)-(\d+)", path.stem)
        if not match:
            continue
        groups[match.group(1)].append(json.loads(path.read_text()))
    if not groups:
        print(f"no <scenario>-<n>.json files in {args[0]}", file=sys.stderr)
        return 1
    if runs_only:
        per_run(groups)
        return 0
    for scenario, runs in groups.items():
        print(f"### {scenario} ({len(runs)} runs: median (min–max))\n")
        print(f"parameters: `{json.dumps(runs[0]['parameters'])}`\n")
        print("| figure | service | baseline | service ÷ baseline |")
        print("|---|---|---|---|")
        table = defaultdict(lambda: ([], [], []))
        order = []
        for run in runs:
            for name, ours, theirs, ratio in rows_of(run):
                if name not in table:
                    order.append(name)
                for column, value in zip(table[name], (ours, theirs, ratio)):
                    column.append(value)
        for name in order:
            ours, theirs, ratio = table[name]
            print(f"| {name} | {cell(ours)} | {cell(theirs)} | {cell(ratio)} |")
        errors = [run["service"].get("errors") or {} for run in runs]
        base_errors = [(run.get("baseline") or {}).get("errors") or {} for run in runs]
        loads = [run.get("load_average") or "?" for run in runs]
        print(f"\nerrors (service, per run): {errors}; baseline: {base_errors}")
        print(f"load average at the end of each run: {loads}\n")
    pair_ratios(groups)
    return 0


if __name__ == "__main__":
    sys.exit(main())
