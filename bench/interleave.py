#!/usr/bin/env python3
"""Times commands side by side, alternating them run by run.

A shared or throttled machine changes speed over minutes; timing all runs of one command and
then all runs of the other (as hyperfine does) lets that drift land on one side of a ratio.
Alternating puts it on both. Writes hyperfine-compatible JSON (results[].mean, stddev, user,
system, times; plus max_rss_kb, the peak RSS over the runs) so reports read either.

usage: interleave.py --runs N --warmup W [--prepare CMD] [--prepare-for NAME CMD ...]
                     --export-json FILE NAME CMD [NAME CMD ...]
--prepare runs before every timed command; --prepare-for NAME CMD replaces it for one of them.
"""
import argparse, json, os, statistics, subprocess, sys, time

def run(cmd):
    start = time.perf_counter()
    proc = subprocess.Popen(["bash", "-c", cmd], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"interleave: command failed: {cmd}")
    # ru_maxrss (KiB) is the largest of the command's processes: treechunk itself, or the
    # biggest stage of a pipeline.
    return wall, usage.ru_utime, usage.ru_stime, usage.ru_maxrss

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--prepare", default="true")
    ap.add_argument("--prepare-for", nargs=2, action="append", default=[], metavar=("NAME", "CMD"))
    ap.add_argument("--export-json", required=True)
    ap.add_argument("pairs", nargs="+")
    a = ap.parse_args()
    if len(a.pairs) % 2:
        sys.exit("interleave: give NAME CMD pairs")
    cmds = list(zip(a.pairs[0::2], a.pairs[1::2]))
    samples = {name: [] for name, _ in cmds}
    prepare = dict(a.prepare_for)
    for i in range(a.warmup + a.runs):
        for name, cmd in cmds:
            subprocess.run(["bash", "-c", prepare.get(name, a.prepare)], check=True)
            s = run(cmd)
            if i >= a.warmup:
                samples[name].append(s)
    results = []
    for name, cmd in cmds:
        walls = [s[0] for s in samples[name]]
        results.append({
            "command": name, "mean": statistics.mean(walls),
            "stddev": statistics.stdev(walls) if len(walls) > 1 else 0.0,
            "min": min(walls), "max": max(walls), "times": walls,
            "user": statistics.mean(s[1] for s in samples[name]),
            "system": statistics.mean(s[2] for s in samples[name]),
            "max_rss_kb": max(s[3] for s in samples[name]),
        })
        print(f"{name}: {results[-1]['mean']:.3f} s ± {results[-1]['stddev']:.3f} s", file=sys.stderr)
    with open(a.export_json, "w") as f:
        json.dump({"results": results}, f, indent=1)

main()
