#!/usr/bin/env bash
# A single-node Slurm on this machine, for the Slurm launcher's tests and for trying `--launcher slurm` without a
# cluster: munge, slurmctld and slurmd on localhost, one partition `debug` holding this machine's CPUs and memory.
#
#   bash scripts/slurm_local.sh start    # install (Debian: slurm-wlm, munge) if missing, configure, start; idempotent
#   bash scripts/slurm_local.sh status   # whether it runs, and the node's state
#   bash scripts/slurm_local.sh stop     # stop the daemons this script started
#
# Needs root (it writes /etc/slurm/slurm.conf and starts daemons) and, if Slurm is not installed, apt-get. It never
# touches a slurm.conf it did not write: a machine with its own Slurm is refused. Exit codes: 0 running; 3 cannot
# start here (the one-line reason on stderr: not root, no apt-get, a foreign slurm.conf, a failed install); 1 it
# should have started and did not (the daemons' logs are named).
# Settings for a container-like machine (no systemd, no cgroups): proctrack/linuxproc, task/none, no accounting,
# SlurmdUser=root; the node line is what `slurmd -C` reports; a requeued job waits cred_expire (here 10 s, Slurm's
# default 120 s) before it starts again.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# written by seqrl scripts/slurm_local.sh"
STATE=/var/lib/seqrl-slurm
PARTITION=debug

cannot() { echo "slurm_local: cannot start a local Slurm here: $*" >&2; exit 3; }
failed() { echo "slurm_local: $*" >&2; exit 1; }

have_slurm() { command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
               && command -v munged >/dev/null; }

install() {
  have_slurm && return 0
  [ "$(id -u)" = 0 ] || cannot "Slurm is not installed and installing it needs root (apt-get install slurm-wlm munge)"
  command -v apt-get >/dev/null || cannot "Slurm is not installed and there is no apt-get to install it"
  echo "slurm_local: installing slurm-wlm and munge (apt-get)"
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge; } >"${TMPDIR:-/tmp}/slurm_local_apt.log" 2>&1 \
    || cannot "apt-get install slurm-wlm munge failed (see ${TMPDIR:-/tmp}/slurm_local_apt.log)"
  have_slurm || cannot "slurm-wlm installed but slurmctld, slurmd, sbatch or munged is missing"
}

write_conf() {
  # The node line: this machine's CPUs and memory as slurmd sees them.
  local node host
  host=$(hostname -s)
  node=$(slurmd -C | head -1 | sed -e "s/^NodeName=[^ ]*/NodeName=$host/")
  local cpus mem
  cpus=$(echo "$node" | sed -n 's/.* CPUs=\([0-9]*\).*/\1/p')
  mem=$(echo "$node" | sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p')
  mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d"
  cat >"$CONF.new" <<EOF
$MARK: a single-node cluster on this machine for
# seqrl's Slurm tests. Remove it with: bash scripts/slurm_local.sh stop && rm $CONF
ClusterName=seqrl-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=10
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=$((mem / cpus))
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
KillWait=5
MinJobAge=600
InactiveLimit=0
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  if [ -f "$CONF" ] && cmp -s "$CONF" "$CONF.new"; then rm "$CONF.new"; return 1; fi
  mv "$CONF.new" "$CONF"
  return 0  # changed
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
  [ -s /etc/munge/munge.key ] || { mungekey --create >/dev/null 2>&1 || /usr/sbin/create-munge-key -f >/dev/null; }
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge && chown munge:munge /run/munge /var/log/munge /var/lib/munge
  runuser -u munge -- /usr/sbin/munged || failed "munged did not start (see /var/log/munge/munged.log)"
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0; sleep 0.1; done
  failed "munged started but munge -n | unmunge fails (see /var/log/munge/munged.log)"
}

stop_daemons() {
  for d in slurmd slurmctld; do
    if pid_alive "$STATE/$d.pid"; then
      local pid; pid=$(cat "$STATE/$d.pid")
      kill "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  done
}

node_state() { sinfo -h -N -n "$(hostname -s)" -o %T 2>/dev/null | head -1; }

start() {
  install
  if [ "$(id -u)" != 0 ]; then  # someone else's (root's) local Slurm may be up already
    scontrol ping 2>/dev/null | grep -q "is UP" && { echo "slurm_local: running"; return 0; }
    cannot "starting Slurm's daemons needs root"
  fi
  if [ -f "$CONF" ] && ! head -1 "$CONF" | grep -qF "$MARK"; then
    cannot "$CONF exists and was not written by this script (this machine has its own Slurm; use it)"
  fi
  local changed=0
  write_conf && changed=1
  start_munge
  [ "$changed" = 1 ] && stop_daemons
  pid_alive "$STATE/slurmctld.pid" || slurmctld || failed "slurmctld did not start (see $STATE/slurmctld.log)"
  pid_alive "$STATE/slurmd.pid" || slurmd || failed "slurmd did not start (see $STATE/slurmd.log)"
  local state=""
  for _ in $(seq 150); do
    state=$(node_state || true)
    case "$state" in
      idle*|mixed*|allocated*|completing*) echo "slurm_local: running; node $(hostname -s) $state, partition $PARTITION ($CONF)"; return 0 ;;
      down*|drain*) scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.2
  done
  failed "the node did not become idle (state: ${state:-unknown}); see $STATE/slurmctld.log and $STATE/slurmd.log"
}

status() {
  if pid_alive "$STATE/slurmctld.pid" && pid_alive "$STATE/slurmd.pid"; then
    echo "slurm_local: running; node $(hostname -s) $(node_state), partition $PARTITION"
  else
    echo "slurm_local: not running"; return 1
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop_daemons; echo "slurm_local: stopped" ;;
  status) status ;;
  *) echo "usage: bash scripts/slurm_local.sh start|status|stop" >&2; exit 2 ;;
esac
