#!/usr/bin/env bash
# Stop the Slurm that cluster/slurm/up.sh started from the same state folder: cancel its jobs, then stop
# slurmd, slurmctld and munged by the PIDs in their pid files (nothing else is signalled). The state
# folder is kept, so job ids go on counting up after the next `make slurm-up`.
set -uo pipefail
uid=$(id -u)
dir=${SEEDBENCH_SLURM_DIR:-/tmp/seedbench-slurm-$uid}
export SLURM_CONF=$dir/slurm.conf

if [ -f "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
  scancel --user="$(id -un)" >/dev/null 2>&1 || true
  for _ in $(seq 1 50); do # running jobs get SIGTERM, then SIGKILL after KillWait (1 s)
    [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
    sleep 0.2
  done
fi

stop() { # stop <pid file> <program name>
  local file=$1 name=$2 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
    kill "$pid"
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$file"
}
stop "$dir/slurmd.pid" slurmd
stop "$dir/slurmctld.pid" slurmctld
stop "$dir/munged.pid" munged
echo "stopped ($dir)"
