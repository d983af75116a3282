#!/usr/bin/env bash
# Installs what the SLURM tests need (slurm-wlm, munge, libpmix-dev), only if some are missing
# (quick when all are there). Runs as root on Debian 12. Starts no daemons: the test harness
# (tests/slurm/slurm_cluster.sh) starts and stops its own private cluster.
set -euo pipefail
exec "$(dirname "$0")/install-deps.sh" slurm-wlm munge libpmix-dev
