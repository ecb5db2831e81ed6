#!/usr/bin/env bash
# Start seedbench's single-node Slurm (munged, slurmctld, slurmd from Debian's packages) as the current
# user, or reuse the one already running from the same state folder.
#
#   SEEDBENCH_SLURM_DIR   state, spool, logs, munge key and socket (default /tmp/seedbench-slurm-<uid>)
#   SEEDBENCH_SLURM_PORT  slurmctld's port; slurmd takes the next one (default 16817 + 2 * (uid % 1000))
#   SEEDBENCH_SLURM_MAX_ARRAY_SIZE  tasks per job array (default 4, so that small grids span several arrays
#                         here as large ones do on a cluster; Slurm's own default is 1001)
#
# The last line printed is `export SLURM_CONF=<state folder>/slurm.conf`: Slurm's clients (sbatch, squeue,
# and so seedbench) need it. Exit status 0: running (started now: first line "started", or "already
# running"); 1: it could not start, with the reason on stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
uid=$(id -u)
dir=${SEEDBENCH_SLURM_DIR:-/tmp/seedbench-slurm-$uid}
ctld_port=${SEEDBENCH_SLURM_PORT:-$((16817 + 2 * (uid % 1000)))}
max_array=${SEEDBENCH_SLURM_MAX_ARRAY_SIZE:-4}
conf=$dir/slurm.conf
export SLURM_CONF=$conf

fail() {
  echo "slurm-up: $*" >&2
  exit 1
}
for tool in munged slurmctld slurmd sbatch squeue scontrol sinfo; do
  command -v "$tool" >/dev/null ||
    fail "$tool not found; install Debian's packages: apt-get install --no-install-recommends slurmctld slurmd slurm-client munge (make slurm-up does it as root)"
done

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if alive "$dir/munged.pid" && alive "$dir/slurmctld.pid" && alive "$dir/slurmd.pid" && sinfo -h >/dev/null 2>&1; then
  echo "already running in $dir"
  echo "export SLURM_CONF=$conf"
  exit 0
fi
"$here/down.sh" >/dev/null 2>&1 || true # whatever half of it is left from before

mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
chmod 755 "$dir" "$dir/munge" # munged refuses a socket folder others can write to
key=$dir/munge/munge.key
if [ ! -s "$key" ]; then
  (umask 077 && dd if=/dev/urandom of="$key" bs=1024 count=1 status=none)
fi
chmod 600 "$key"
socket=$dir/munge/munge.socket
munged --force --socket="$socket" --key-file="$key" --pid-file="$dir/munged.pid" \
  --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed" ||
  fail "munged did not start; see $dir/log/munged.log"

host=$(hostname -s)
# CPUs, sockets, cores, threads and RealMemory exactly as slurmd detects them here
hardware=$(slurmd -C | head -n 1 | tr ' ' '\n' | grep -v -e '^NodeName=' -e '^$' | tr '\n' ' ')
sed -e "s|@HOST@|$host|g" -e "s|@DIR@|$dir|g" -e "s|@USER@|$(id -un)|g" \
  -e "s|@CTLD_PORT@|$ctld_port|g" -e "s|@SLURMD_PORT@|$((ctld_port + 1))|g" -e "s|@HARDWARE@|$hardware|g" -e "s|@MAX_ARRAY_SIZE@|$max_array|g" \
  "$here/slurm.conf.in" >"$conf.tmp"
mv "$conf.tmp" "$conf"

slurmctld -f "$conf" || fail "slurmctld did not start; see $dir/log/slurmctld.log"
slurmd -f "$conf" -N "$host" || fail "slurmd did not start; see $dir/log/slurmd.log"

# ready once the node takes jobs (a node the controller remembers as down is put back in service)
for _ in $(seq 1 100); do
  state=$(sinfo -h -N -n "$host" -o %T 2>/dev/null | head -n 1 || true)
  case "$state" in
  idle* | mixed* | allocated* | completing*)
    echo "started in $dir ($hardware)"
    echo "export SLURM_CONF=$conf"
    exit 0
    ;;
  down* | drain*) scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
  esac
  sleep 0.2
done
fail "the node did not become ready within 20 s (state: ${state:-none}); see $dir/log/slurmctld.log and $dir/log/slurmd.log"
