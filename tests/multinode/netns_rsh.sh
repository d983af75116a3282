#!/bin/sh
# Open MPI's remote shell for the test hosts of cluster.py (--mca plm_rsh_agent):
#   netns_rsh.sh HOST COMMAND...
# runs COMMAND (one shell command line, as ssh would get it) inside HOST's network namespace,
# in a UTS namespace whose hostname is HOST.
host=$1
shift
exec ip netns exec "$host" unshare --uts sh -c 'hostname "$0" && exec sh -c "$1"' "$host" "$*"
