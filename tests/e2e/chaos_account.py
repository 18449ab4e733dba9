#!/usr/bin/env python3
"""chaos_account.py — the exact accounting of a chaos run (Jepsen's total
queue check after a full drain): which accepted tasks have a final result.

  chaos_account.py (--acks FILE... | --range FIRST LAST) [--id N]... RESULTS...

Accepted ids come from the producers' ack files ("FIRST LAST" per accepted
batch) or a range. Prints one line of key=value figures:
  accepted   ids whose push returned them
  lost       accepted ids with no final result line (done, failed or dead)
  duplicates final result lines beyond the first for an id (at-least-once)
  unacked    ids with a result that no producer was told were accepted
             (a producer killed inside a push: allowed, Jepsen's
             "indeterminate")
  torn       pieces of lines cut by a process killed inside its write(2);
             the record after such a piece is still read
  wrong      "K+1" tasks (or "0+0+...+K+1") whose result is not K+1 (a corrupted record)
  done/failed/dead/unfinished  accepted ids with at least one such line
and, for each --id N, status_N=STATUS[,STATUS...] (its final statuses).
Exit 0 when lost == 0 and wrong == 0, else 1.
"""
import json
import re
import sys

FINAL = ("done", "failed", "dead")


def main(argv):
    acks, ranges, ids_asked, results = [], [], [], []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--acks":
            acks.append(argv[i + 1])
            i += 2
        elif a == "--range":
            ranges.append((int(argv[i + 1]), int(argv[i + 2])))
            i += 3
        elif a == "--id":
            ids_asked.append(int(argv[i + 1]))
            i += 2
        else:
            results.append(a)
            i += 1

    accepted = bytearray()  # index: id; 1 = accepted

    def accept(lo, hi):
        nonlocal accepted
        if hi >= len(accepted):
            accepted.extend(b"\0" * (hi + 1 - len(accepted)))
        accepted[lo:hi + 1] = b"\1" * (hi + 1 - lo)

    for f in acks:
        try:
            with open(f) as fh:
                for line in fh:
                    p = line.split()
                    if len(p) == 2:
                        accept(int(p[0]), int(p[1]))
        except FileNotFoundError:
            pass
    for lo, hi in ranges:
        accept(lo, hi)

    # Per id: final lines seen (capped at 255) and a bit per status seen.
    bits = {"done": 1, "failed": 2, "dead": 4, "unfinished": 8}
    nfin = bytearray(len(accepted))
    seen = bytearray(len(accepted))
    other = {}  # ids beyond the accepted range -> statuses
    asked = {tid: [] for tid in ids_asked}
    torn = wrong = 0
    dec = json.JSONDecoder()
    fast = re.compile(rb'\{"id":(\d+),"task":"([^"\\]*)","status":"([a-z]+)"'
                      rb'(?:,"(?:result|error)":"([^"\\]*)")?[^{]*\}$')
    arith = re.compile(r"(?:0\+)*(\d+)\+1")

    def take(tid, st, task, result):
        nonlocal wrong
        if tid < len(seen):
            seen[tid] |= bits.get(st, 16)
            if st in FINAL and nfin[tid] < 255:
                nfin[tid] += 1
        else:
            other.setdefault(tid, []).append(st)
        if tid in asked:
            asked[tid].append(st)
        if st == "done":
            m = arith.fullmatch(task)
            if m and result != str(int(m.group(1)) + 1):
                wrong += 1

    for f in results:
        with open(f, "rb") as fh:
            for raw in fh:
                raw = raw.rstrip(b"\n")
                if not raw:
                    continue
                m = fast.match(raw)
                if m and raw.count(b'{"id":') == 1:
                    take(int(m.group(1)), m.group(3).decode(), m.group(2).decode(),
                         (m.group(4) or b"").decode())
                    continue
                line = raw.decode("utf-8", "replace")
                # A line cut by a process killed inside its write(2) is
                # followed by the next writer's record: read every record
                # that ends the line or is followed by another.
                starts = [m.start() for m in re.finditer(r'\{"id":', line)]
                if not starts or starts[0] != 0:
                    torn += 1
                for k, s in enumerate(starts):
                    end = starts[k + 1] if k + 1 < len(starts) else len(line)
                    try:
                        rec, n = dec.raw_decode(line[s:end])
                        if n != end - s:
                            raise ValueError
                    except ValueError:
                        torn += 1
                        continue
                    take(rec["id"], rec.get("status"), rec.get("task", ""),
                         rec.get("result", ""))

    n_acc = lost = dup = 0
    per = {"done": 0, "failed": 0, "dead": 0, "unfinished": 0}
    lost_sample = []
    unacked = len(other)
    for tid in range(len(accepted)):
        if not accepted[tid]:
            if seen[tid]:
                unacked += 1
            continue
        n_acc += 1
        if not nfin[tid]:
            lost += 1
            if len(lost_sample) < 5:
                lost_sample.append(str(tid))
        dup += max(0, nfin[tid] - 1)
        for k, b in bits.items():
            if seen[tid] & b:
                per[k] += 1
    out = [f"accepted={n_acc}", f"lost={lost}", f"duplicates={dup}", f"unacked={unacked}",
           f"torn={torn}", f"wrong={wrong}"]
    out += [f"{k}={v}" for k, v in per.items()]
    for tid in ids_asked:
        out.append(f"status_{tid}={','.join(asked[tid] or ['none'])}")
    if lost_sample:
        out.append("lost_ids=" + ",".join(lost_sample))
    print(" ".join(out))
    return 0 if lost == 0 and wrong == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
