#!/usr/bin/env python3
"""Instruction-level profile of firmware under QEMU.

Run the firmware with `-d in_asm,exec,nochain -D trace.log`, then

    tools/qemu_profile.py trace.log firmware.elf [--lines N] [--from ADDR --to ADDR]

prints the instructions executed per function and per source line (via
arm-none-eabi-addr2line), and the hottest instructions with their disassembly.
"""
import argparse, collections, re, subprocess, sys

ap = argparse.ArgumentParser()
ap.add_argument("trace")
ap.add_argument("elf")
ap.add_argument("--lines", type=int, default=40)
ap.add_argument("--insns", type=int, default=60)
a = ap.parse_args()

blocks = {}          # tb start pc -> [(addr, text)]
execs = collections.Counter()
cur = None
in_re = re.compile(r"^0x([0-9a-f]+):\s+(.*)$")
tr_re = re.compile(r"^Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/")
with open(a.trace) as f:
    for line in f:
        if line.startswith("IN:"):
            cur = []
            continue
        m = in_re.match(line)
        if m and cur is not None:
            cur.append((int(m.group(1), 16), m.group(2).strip()))
            continue
        if line.startswith("----") or not line.strip():
            if cur:
                blocks[cur[0][0]] = cur
            cur = None if line.startswith("----") else cur
            continue
        m = tr_re.match(line)
        if m:
            if cur:
                blocks[cur[0][0]] = cur
                cur = None
            execs[int(m.group(1), 16)] += 1

per_insn = collections.Counter()
text = {}
for pc, n in execs.items():
    for addr, t in blocks.get(pc, []):
        per_insn[addr] += n
        text[addr] = t
total = sum(per_insn.values())
addrs = sorted(per_insn)
out = subprocess.run(["arm-none-eabi-addr2line", "-f", "-C", "-i", "-e", a.elf] + [hex(x) for x in addrs],
                     capture_output=True, text=True).stdout.split("\n")
# with -i, inlined frames add extra pairs; take the innermost (first pair) per address by re-running without -i
out = subprocess.run(["arm-none-eabi-addr2line", "-f", "-C", "-e", a.elf] + [hex(x) for x in addrs],
                     capture_output=True, text=True).stdout.split("\n")
by_line = collections.Counter()
by_func = collections.Counter()
where = {}
for i, addr in enumerate(addrs):
    func, loc = out[2 * i], out[2 * i + 1]
    loc = re.sub(r".*/(src|library)/", r"\1/", loc)
    by_line[loc] += per_insn[addr]
    by_func[func] += per_insn[addr]
    where[addr] = loc
print(f"total instructions {total}")
print("\n-- by source line --")
for loc, n in by_line.most_common(a.lines):
    print(f"{n:>10} {100*n/total:5.1f}%  {loc}")
print("\n-- hottest instructions --")
for addr, n in per_insn.most_common(a.insns):
    print(f"{n:>10} {addr:08x}  {text[addr]:<40} {where[addr]}")
