#!/usr/bin/env python3
"""Makes a large root filesystem for bench/scale.sh from a real Debian tree.

usage: scale_tree.py BASE OUT --replicas N --unique-mb M

OUT is BASE, plus N replicas of BASE's usr/ under opt/replica-NN/usr, each registered in the
dpkg database as its own set of packages (every package P of BASE gets a P-rNN stanza and a
P-rNN.list naming the replica's paths), so the tree is owned the way a distribution with many
packages is and the planner has thousands of components to place; plus M MB of unique files
under opt/unique/ (half incompressible, in 1 MiB files; half text, in 64 KiB files) so that
the compressor does real work on content it has not seen. Everything is made from fixed seeds:
the same arguments give the same tree. Writes to OUT.tmp and renames.
"""
import argparse
import os
import random
import shutil
import subprocess
import sys


def replicate_dpkg(base, out, replicas):
    status_path = os.path.join(out, "var/lib/dpkg/status")
    info = os.path.join(out, "var/lib/dpkg/info")
    stanzas = open(os.path.join(base, "var/lib/dpkg/status"), encoding="utf-8").read().strip("\n").split("\n\n")
    lists = [f for f in os.listdir(os.path.join(base, "var/lib/dpkg/info")) if f.endswith(".list")]
    extra = []
    for r in range(1, replicas + 1):
        suffix = f"-r{r:02d}"
        prefix = f"/opt/replica-{r:02d}"
        for stanza in stanzas:
            lines, skipping = [], False
            for line in stanza.split("\n"):
                if line.startswith(" "):
                    if not skipping:
                        lines.append(line)
                    continue
                # Relations would tie replicas to the base's packages; conffiles name /etc paths
                # the replicas do not have.
                skipping = line.startswith(("Depends:", "Pre-Depends:", "Recommends:", "Suggests:", "Breaks:",
                                            "Conflicts:", "Replaces:", "Provides:", "Enhances:", "Conffiles:"))
                if skipping:
                    continue
                if line.startswith("Package: "):
                    line += suffix
                elif line.startswith("Source: "):
                    # "Source: name (version)" keeps its version
                    parts = line.split(" ", 2)
                    parts[1] += suffix
                    line = " ".join(parts)
                lines.append(line)
            extra.append("\n".join(lines))
        for name in lists:
            package, _, rest = name[:-len(".list")].partition(":")
            target = f"{package}{suffix}{':' + rest if rest else ''}.list"
            with open(os.path.join(base, "var/lib/dpkg/info", name), encoding="utf-8", errors="surrogateescape") as src, \
                 open(os.path.join(info, target), "w", encoding="utf-8", errors="surrogateescape") as dst:
                for path in src:
                    path = path.rstrip("\n")
                    if path == "/usr" or path.startswith("/usr/"):
                        dst.write(prefix + path + "\n")
    with open(status_path, "a", encoding="utf-8") as f:
        for s in extra:
            f.write("\n" + s + "\n")


def unique_files(out, megabytes):
    root = os.path.join(out, "opt/unique")
    rng = random.Random(20261203)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10))) for _ in range(5000)]
    half = megabytes * (1 << 20) // 2
    os.makedirs(os.path.join(root, "bin"), exist_ok=True)
    done, i = 0, 0
    while done < half:
        data = rng.randbytes(1 << 20)
        with open(os.path.join(root, "bin", f"blob{i:05d}.bin"), "wb") as f:
            f.write(data)
        done += len(data)
        i += 1
    done, i = 0, 0
    while done < half:
        d = os.path.join(root, "text", f"d{i // 100:03d}")
        os.makedirs(d, exist_ok=True)
        parts, size = [], 0
        while size < 64 << 10:
            line = " ".join(rng.choices(words, k=12)) + "\n"
            parts.append(line)
            size += len(line)
        with open(os.path.join(d, f"t{i:05d}.txt"), "w") as f:
            f.write("".join(parts))
        done += size
        i += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("out")
    ap.add_argument("--replicas", type=int, required=True)
    ap.add_argument("--unique-mb", type=int, required=True)
    a = ap.parse_args()
    tmp = a.out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(["cp", "-a", a.base, tmp], check=True)
    for r in range(1, a.replicas + 1):
        dst = os.path.join(tmp, f"opt/replica-{r:02d}")
        os.makedirs(dst)
        subprocess.run(["cp", "-a", os.path.join(a.base, "usr"), dst], check=True)
    if a.replicas:
        replicate_dpkg(a.base, tmp, a.replicas)
    unique_files(tmp, a.unique_mb)
    # Fixed mtimes for what this script made (cp -a kept the base's).
    subprocess.run(["find", os.path.join(tmp, "opt"), "-newer", os.path.join(tmp, "etc/os-release"),
                    "-exec", "touch", "-h", "-d", "@1700000000", "{}", "+"], check=True)
    subprocess.run(["touch", "-d", "@1700000000", os.path.join(tmp, "var/lib/dpkg/status"), os.path.join(tmp, "var/lib/dpkg/info")], check=True)
    shutil.rmtree(a.out, ignore_errors=True)
    os.rename(tmp, a.out)


if __name__ == "__main__":
    sys.exit(main())
