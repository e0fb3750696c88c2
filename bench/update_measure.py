#!/usr/bin/env python3
"""Measures of an update between two trees and two images, for bench/update-efficiency.sh.

  update_measure.py ideal V1_TREE V2_TREE          -> bytes of the ideal update, and entry counts
  update_measure.py download V1_LAYOUT V2_LAYOUT   -> layers, v2 bytes, download bytes, reused layers
  update_measure.py summary < IDEAL_JSON           -> one line about the pair

The ideal update is one zstd -3 tar (name-sorted, mtimes 0, numeric owners) of only the entries
of v2 that are new or changed (type, mode, owner, content, link target or xattrs differ).
The download of an update is the compressed size of v2's layers whose digest v1 does not have.
"""
import hashlib, io, json, os, stat, subprocess, sys, tarfile


def entries(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            out[rel] = full
    return out


def signature(full):
    st = os.lstat(full)
    parts = [stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid]
    if stat.S_ISREG(st.st_mode):
        h = hashlib.sha256()
        with open(full, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                h.update(block)
        parts.append(h.hexdigest())
    elif stat.S_ISLNK(st.st_mode):
        parts.append(os.readlink(full))
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        parts.append(st.st_rdev)
    try:
        parts.append(sorted((k, os.getxattr(full, k, follow_symlinks=False)) for k in os.listxattr(full, follow_symlinks=False)))
    except OSError:
        pass
    return parts


def ideal(v1, v2):
    a, b = entries(v1), entries(v2)
    changed = [p for p in sorted(b) if p not in a or signature(a[p]) != signature(b[p])]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as t:
        for p in changed:
            info = t.gettarinfo(b[p], arcname=p)
            if info is None:  # sockets
                continue
            info.mtime = 0
            info.uname = info.gname = ''
            if info.isreg():
                with open(b[p], 'rb') as f:
                    t.addfile(info, f)
            else:
                t.addfile(info)
    z = subprocess.run(['zstd', '-3', '-q', '-c'], input=buf.getvalue(), stdout=subprocess.PIPE, check=True).stdout
    removed = sum(1 for p in a if p not in b)
    print(json.dumps({'ideal_bytes': len(z), 'entries_v2': len(b), 'entries_changed': len(changed), 'entries_removed': removed}))


def layers(layout):
    with open(os.path.join(layout, 'index.json')) as f:
        index = json.load(f)
    digest = index['manifests'][0]['digest']
    with open(os.path.join(layout, 'blobs', 'sha256', digest[7:])) as f:
        manifest = json.load(f)
    return [(l['digest'], l['size']) for l in manifest['layers']]


def download(v1, v2):
    old = {d for d, _ in layers(v1)}
    new = layers(v2)
    fetched = [(d, s) for d, s in new if d not in old]
    print(json.dumps({'layers': len(new), 'v2_bytes': sum(s for _, s in new), 'download_bytes': sum(s for _, s in fetched),
                      'reused_layers': len(new) - len(fetched)}))


def summary():
    r = json.load(sys.stdin)
    print(f"{r['entries_changed']} of {r['entries_v2']} entries new or changed, {r['entries_removed']} removed; ideal {r['ideal_bytes'] / 1e6:.1f} MB")


if __name__ == '__main__':
    if sys.argv[1] == 'summary':
        summary()
    else:
        {'ideal': ideal, 'download': download}[sys.argv[1]](sys.argv[2], sys.argv[3])
