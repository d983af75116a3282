#!/usr/bin/env python3
"""The portable build's promise, checked on the built library (CTest `lint_isa_build`, label
`unit`): a binary built here runs on any x86-64-v2 CPU (src/kernels/cpu/isa.h).

1. Every ISA level's kernels are one object of libshardlm_core.a (cpu_kernels_<level>.o)
   whose only global definition is its entry point shardlm_cpu_isa_kernels_<level>: nothing
   compiled for AVX2 or AVX-512 (an inline std:: function, say) can be linked in for baseline
   code.
2. No other object of the library uses a ymm or zmm register (they are built for x86-64-v2).
   Skipped (77) for a SHARDLM_NATIVE build, which gives this up on purpose.
3. The kernel sources follow kernels/cpu/isa_namespace.h: kernels/cpu/*.cpp never open the
   plain shardlm::cpu namespace, and every kernels/cpu/ header except the portable ones opens
   the level's inline namespace.

    check_isa_build.py LIBSHARDLM_CORE_A REPO_ROOT NATIVE(ON|OFF)
"""
import glob
import os
import re
import subprocess
import sys

LEVELS = ("sse", "avx2", "avx512")
# kernels/cpu/ headers of code compiled once (kernels/cpu/portable/), usable from anywhere.
PORTABLE_HEADERS = {"gemm.h", "peak_flops.h", "isa.h", "threads.h", "wait_policy.h", "isa_namespace.h"}


def level_objects_export_only_their_entry(archive):
    problems = []
    out = subprocess.run(["nm", "-A", "--defined-only", "-g", archive], check=True,
                         capture_output=True, text=True).stdout
    exported = {level: [] for level in LEVELS}
    for line in out.splitlines():
        member_part, _, rest = line.rpartition(":")
        member = member_part.rsplit(":", 1)[-1]
        m = re.fullmatch(r"cpu_kernels_(\w+)\.o", member)
        if m and m.group(1) in exported:
            exported[m.group(1)].append(rest.split()[-1])
    for level, symbols in exported.items():
        want = [f"shardlm_cpu_isa_kernels_{level}"]
        if symbols != want:
            problems.append(f"cpu_kernels_{level}.o defines {symbols[:8]} globally, want only {want}")
    return problems


def baseline_objects_use_no_avx(archive):
    problems = []
    members = subprocess.run(["ar", "t", archive], check=True, capture_output=True,
                             text=True).stdout.split()
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", archive], check=True,
                         capture_output=True, text=True).stdout
    member = function = None
    for line in dis.splitlines():
        m = re.match(r"^In archive .*:$", line)
        if m:
            continue
        m = re.match(r"^(\S+\.o):\s+file format", line)
        if m:
            member = m.group(1)
            continue
        m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if m:
            function = m.group(1)
            continue
        if member and not member.startswith("cpu_kernels_") and re.search(r"%[yz]mm\d", line):
            problems.append(f"{member}: {function} uses AVX registers: {line.strip()}")
            if len(problems) > 10:
                break
    if not any(m.startswith("cpu_kernels_") for m in members):
        problems.append(f"{archive} has no cpu_kernels_<level>.o members")
    return problems


def sources_use_the_level_namespace(repo):
    problems = []
    cpu = os.path.join(repo, "src", "kernels", "cpu")
    for path in sorted(glob.glob(os.path.join(cpu, "*.cpp")) + glob.glob(os.path.join(cpu, "*.h"))):
        name = os.path.basename(path)
        text = open(path, encoding="utf-8").read()
        if name.endswith(".cpp") and re.search(r"^namespace shardlm::cpu \{\n(?!inline namespace SHARDLM_CPU_ISA \{)",
                                               text, re.M):
            problems.append(f"src/kernels/cpu/{name}: opens namespace shardlm::cpu without the level's "
                            "inline namespace SHARDLM_CPU_ISA (kernels/cpu/isa_namespace.h)")
        if name.endswith(".h") and name not in PORTABLE_HEADERS and "inline namespace SHARDLM_CPU_ISA {" not in text:
            problems.append(f"src/kernels/cpu/{name}: a kernel header outside the level's "
                            "namespace (kernels/cpu/isa_namespace.h), or add it to PORTABLE_HEADERS "
                            "if its code is in kernels/cpu/portable/")
    return problems


def main(archive, repo, native):
    problems = sources_use_the_level_namespace(repo) + level_objects_export_only_their_entry(archive)
    if native != "ON":
        problems += baseline_objects_use_no_avx(archive)
    for p in problems:
        print(p)
    if problems:
        return 1
    if native == "ON":
        print("SHARDLM_NATIVE=ON: the baseline code is built for this machine (rule 2 skipped)")
        return 77
    print(f"ok: {', '.join(LEVELS)} kernels export only their entries; the rest is x86-64-v2")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
