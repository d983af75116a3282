#!/usr/bin/env bash
# Installs what the SLURM tests need (slurm-wlm, munge, libpmix-dev), only if some are missing
# (quick when all are there). Runs as root on Debian 12. Starts no daemons: the test harness
# (tests/slurm/slurm_cluster.sh) starts and stops its own private cluster.
set -euo pipefail
packages=(slurm-wlm munge libpmix-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-slurm: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
