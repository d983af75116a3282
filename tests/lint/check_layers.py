#!/usr/bin/env python3
"""The architecture's rules that a grep can check (CTest `lint_layers`, label `unit`):

1. Includes run downward only: cli -> train/convert -> model/parallel/checkpoint/data/optim/plan ->
   kernels -> core (plan, the memory and step-time model, uses model and parallel). Within the middle tier, model may use parallel (TP operators, the pipeline's stage
   interface) and optim may use model (the view table); parallel, checkpoint and data use
   neither model nor each other except where listed.
2. Outside src/model/ no source names a model family's classes or folder (GPT2, gpt2/).
3. No CUDA header or SHARDLM_HAVE_CUDA #ifdef outside src/kernels/, and <mpi.h> only in the
   MPI communicator and runtime (and the error family's MPI message).

    check_layers.py REPO_ROOT
"""
import os
import re
import sys

ALLOWED = {
    "core": {"core"},
    "kernels": {"core", "kernels"},
    "parallel": {"core", "kernels", "parallel"},
    "checkpoint": {"core", "checkpoint", "parallel"},
    "data": {"core", "data"},
    "model": {"core", "kernels", "parallel", "model"},
    "optim": {"core", "kernels", "model", "optim"},
    "plan": {"core", "kernels", "parallel", "model", "plan"},
    "train": {"core", "kernels", "parallel", "checkpoint", "data", "model", "optim", "plan", "train"},
    # Conversion to and from other engines' files: reads checkpoints, writes tokenizers, maps
    # names through each family's model/<family>/interchange.cpp.
    "convert": {"core", "kernels", "parallel", "checkpoint", "data", "model", "convert"},
    "cli": {"core", "kernels", "parallel", "checkpoint", "data", "model", "optim", "plan", "train",
            "convert", "cli"},
}
# The MPI communicator and runtime, and the error family's MPI_CHECK message (core/error.cpp,
# with the HDF5 and CUDA ones: DESIGN.md's one family of check macros).
MPI_FILES = {"parallel/mpi_comm.h", "parallel/mpi_comm.cpp", "parallel/mpi_runtime.cpp",
             "core/error.cpp"}
INCLUDE = re.compile(r'^\s*#\s*include\s+[<"]([^">]+)[">]')


def main(repo):
    src = os.path.join(repo, "src")
    problems = []
    for root, _, files in os.walk(src):
        for name in sorted(files):
            if not name.endswith((".h", ".cpp", ".cu", ".cuh")):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, src)
            layer = rel.split(os.sep)[0]
            text = open(path, encoding="utf-8").read()
            for lineno, line in enumerate(text.splitlines(), 1):
                m = INCLUDE.match(line)
                where = f"src/{rel}:{lineno}"
                if m:
                    target = m.group(1)
                    top = target.split("/")[0]
                    if top in ALLOWED and layer in ALLOWED and top not in ALLOWED[layer]:
                        problems.append(f"{where}: {layer}/ includes {target} ({top}/ is not below {layer}/)")
                    if layer != "kernels" and (target.startswith("kernels/cuda/") or target.startswith("cuda")
                                               or target.startswith("cublas")):
                        problems.append(f"{where}: CUDA header {target} outside src/kernels/")
                    if target == "mpi.h" and rel not in MPI_FILES:
                        problems.append(f"{where}: <mpi.h> outside the MPI communicator")
                if layer not in ("kernels",) and "SHARDLM_HAVE_CUDA" in line:
                    problems.append(f"{where}: SHARDLM_HAVE_CUDA outside src/kernels/")
                if layer != "model" and re.search(r"\bGPT2\b|\bGpt2\w*|model/gpt2/", line):
                    problems.append(f"{where}: names the GPT-2 family outside src/model/")
    for p in problems:
        print(p)
    print(f"check_layers: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
