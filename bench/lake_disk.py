#!/usr/bin/env python3
"""Posts events at a steady rate to a running cxlake and samples, every
SAMPLE seconds, the bytes the lake directory holds on disk (data files,
replaced files not yet vacuumed, the Delta log) against the bytes of the
table's current version, read from the Delta log itself (adds minus
removes), so any build of the service can be measured.

The events are those of `cxlake generate`, in their order, each stamped
with the wall-clock time it is sent at and given ids of their own (a
`live<round>-` prefix, so neither a lake holding the same month as history
nor a second pass over the file makes them duplicates): a month of demo
traffic replayed as live traffic, landing in today's partitions as it
would in production.

Meanwhile a reader (an analyst key) runs a query over every event, one
after the other, as dashboards and analysts would: with a short
retention, vacuum must keep the files those queries still read.

usage: lake_disk.py ADDR KEY EVENTS.ndjson LAKE_DIR MINUTES RATE OUT.csv [READ_KEY]
"""
import http.client
import json
import os
import sys
import threading
import time
from datetime import datetime, timezone

addr, key, events_path, lake_dir, minutes, rate, out_csv = sys.argv[1:8]
read_key = sys.argv[8] if len(sys.argv) > 8 else None
minutes, rate = float(minutes), float(rate)
host, port = addr.split(":")
SAMPLE = 15.0
BATCH_EVERY = 0.25


def disk_bytes(root):
    total = 0
    for d, _, files in os.walk(root):
        for f in files:
            try:
                total += os.stat(os.path.join(d, f)).st_size
            except FileNotFoundError:
                pass  # vacuumed while walking
    return total


def live_bytes(root):
    """Bytes of the data files of the table's current version."""
    log = os.path.join(root, "_delta_log")
    files = {}
    for name in sorted(n for n in os.listdir(log) if n.endswith(".json")):
        try:
            with open(os.path.join(log, name)) as f:
                for line in f:
                    a = json.loads(line)
                    if "add" in a:
                        files[a["add"]["path"]] = a["add"]["size"]
                    elif "remove" in a:
                        files.pop(a["remove"]["path"], None)
        except FileNotFoundError:
            pass
    return sum(files.values())


def metrics():
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    out = {}
    for line in text.splitlines():
        if line.startswith("cxlake_") and " " in line and "{" not in line:
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


stop = threading.Event()
samples = []
sent = [0]
errors = [0]


def sampler(started):
    while not stop.wait(SAMPLE):
        if not os.path.isdir(os.path.join(lake_dir, "_delta_log")):
            continue  # an empty lake until the first flush
        m = metrics()
        live = live_bytes(lake_dir)
        disk = disk_bytes(lake_dir)
        samples.append((time.time() - started, sent[0], live, disk, m.get("cxlake_lake_files", 0),
                        m.get("cxlake_compactions_total", 0), m.get("cxlake_vacuumed_files_total", 0)))
        print(f"{samples[-1][0]:7.0f} s  events {sent[0]:>9,}  live {live/1e6:8.2f} MB  "
              f"disk {disk/1e6:8.2f} MB  ratio {disk/live if live else float('nan'):.2f}  "
              f"files {samples[-1][4]:.0f}", file=sys.stderr, flush=True)


queries = {"ok": 0, "failed": 0, "errors": []}
READ_SQL = "SELECT channel, count(*), max(occurred_at) FROM events GROUP BY channel"


def reader():
    """Queries every event back to back until the run ends."""
    body = json.dumps({"sql": READ_SQL}).encode()
    headers = {"Authorization": f"Bearer {read_key}", "Content-Type": "application/json"}
    while not stop.is_set():
        try:
            c = http.client.HTTPConnection(host, int(port), timeout=120)
            c.request("POST", "/v1/sql", body=body, headers=headers)
            r = c.getresponse()
            text = r.read().decode(errors="replace")
            c.close()
            if r.status == 200:
                queries["ok"] += 1
            elif r.status == 429:
                time.sleep(0.1)  # the tenant's query slots are busy: not a failure
            else:
                queries["failed"] += 1
                if len(queries["errors"]) < 3:
                    queries["errors"].append(f"{r.status}: {text[:300]}")
        except OSError as e:
            queries["failed"] += 1
            if len(queries["errors"]) < 3:
                queries["errors"].append(str(e))


def main():
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"}
    started = time.time()
    threading.Thread(target=sampler, args=(started,), daemon=True).start()
    if read_key:
        threading.Thread(target=reader, daemon=True).start()
    per_batch = max(1, int(rate * BATCH_EVERY))
    rounds = 0
    with open(events_path) as f:
        next_at = started
        while time.time() - started < minutes * 60:
            lines = []
            now = datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
            for _ in range(per_batch):
                line = f.readline()
                if not line:
                    f.seek(0)
                    rounds += 1
                    line = f.readline()
                e = json.loads(line)
                e["occurred_at"] = now
                for k in ("event_id", "conversation_id"):
                    if e.get(k):
                        e[k] = f"live{rounds}-{e[k]}"
                lines.append(json.dumps(e))
            body = "\n".join(lines).encode()
            while True:
                conn.request("POST", "/v1/events", body=body, headers=headers)
                r = conn.getresponse()
                r.read()
                if r.status == 200:
                    break
                errors[0] += 1
                time.sleep(1)
            sent[0] += per_batch
            next_at += BATCH_EVERY
            time.sleep(max(0.0, next_at - time.time()))
    stop.set()
    time.sleep(0.5)
    with open(out_csv, "w") as out:
        out.write("elapsed_s,events,live_bytes,disk_bytes,lake_files,compactions,vacuumed_files\n")
        for s in samples:
            out.write(",".join(f"{v:.0f}" for v in s) + "\n")
    ratios = [(t, d / l) for (t, _, l, d, *_rest) in samples if l]
    worst = max(ratios, key=lambda x: x[1]) if ratios else (0, float("nan"))
    print(json.dumps({
        "minutes": minutes, "rate": rate, "events": sent[0], "retried_batches": errors[0],
        "final_live_mb": samples[-1][2] / 1e6 if samples else None,
        "final_disk_mb": samples[-1][3] / 1e6 if samples else None,
        "final_ratio": ratios[-1][1] if ratios else None,
        "max_ratio": worst[1], "max_ratio_at_s": worst[0],
        "queries": queries["ok"], "failed_queries": queries["failed"], "query_errors": queries["errors"],
    }))


main()
