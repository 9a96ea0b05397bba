#!/usr/bin/env python3
"""CPU time used so far, per part of the system, for the sizing in docs/SCALING.md.

Usage: python3 scripts/cpu_sample.py REDIS_PID > sample.json
       python3 scripts/cpu_sample.py --diff BEFORE.json AFTER.json MESSAGES DELIVERIES

A sample is the CPU seconds (user + system) of every `postgres`, `chat-room` and
`nginx` process, of the Redis server REDIS_PID, and of the whole machine
(/proc/stat, all cores), and the seconds their threads spent runnable but
waiting for a core (/proc/PID/task/TID/schedstat). --diff prints, for the
interval between two samples, each part's CPU seconds, its share of the
machine, its cost per 1,000 messages and per 10,000 deliveries, and its wait
for a core per message; "other" is the rest (the load generator).
"""

import json
import os
import sys

TICK = os.sysconf("SC_CLK_TCK")
PARTS = ("postgres", "chat-room", "nginx")


def waited(pid):
    """Seconds the threads of `pid` spent runnable, waiting for a core."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
    except OSError:
        pass
    return total / 1e9


def sample(redis_pid):
    parts = dict.fromkeys(PARTS, 0.0)
    parts["redis"] = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / TICK
        part = "redis" if pid == str(redis_pid) else comm if comm in PARTS else None
        if part is None:
            continue
        parts[part] += seconds
        parts[f"wait:{part}"] = parts.get(f"wait:{part}", 0.0) + waited(pid)
    with open("/proc/stat") as f:
        cpu = [int(v) for v in f.readline().split()[1:]]
    busy = sum(cpu) - cpu[3] - cpu[4]  # all but idle and iowait
    parts["machine"] = busy / TICK
    return parts


def diff(before, after, messages, deliveries):
    used = {k: after[k] - before.get(k, 0.0) for k in after if not k.startswith("wait:")}
    waits = {k[5:]: after[k] - before.get(k, 0.0) for k in after if k.startswith("wait:")}
    machine = used.pop("machine")
    used["other"] = max(0.0, machine - sum(used.values()))
    rows = {}
    for part, seconds in used.items():
        rows[part] = {
            "cpu_s": round(seconds, 3),
            "share": round(seconds / machine, 3) if machine else None,
            "cpu_ms_per_1000_messages": round(1000 * seconds / messages * 1000, 2) if messages else None,
            "cpu_ms_per_10000_deliveries": round(1000 * seconds / deliveries * 10000, 2) if deliveries else None,
        }
        if part in waits and messages:
            rows[part]["wait_for_a_core_us_per_message"] = round(1e6 * waits[part] / messages, 1)
    rows["machine"] = {"cpu_s": round(machine, 3)}
    return rows


if __name__ == "__main__":
    if sys.argv[1] == "--diff":
        before, after = (json.load(open(p)) for p in sys.argv[2:4])
        print(json.dumps(diff(before, after, float(sys.argv[4]), float(sys.argv[5])), indent=2))
    else:
        print(json.dumps(sample(int(sys.argv[1]))))
