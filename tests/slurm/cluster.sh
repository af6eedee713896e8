# shellcheck shell=bash
# A throwaway one-node Slurm cluster for a test: source this file, then
#
#   slurm_cluster_start DIR            # key, config, state and logs all live in DIR;
#                                      # exports SLURM_CONF, so sbatch/squeue/scancel
#                                      # talk to this cluster only
#   slurm_wait_jobs [--timeout S] JOBID...   # until none of them is queued or running
#   slurm_job_states JOBID             # "taskid state exitcode" per finished task
#   slurm_cluster_stop                 # idempotent; meant for an EXIT trap too
#
# Needs: Debian's slurmctld, slurmd, slurm-client and munge (tools/install-deps);
# root, because slurmd runs the jobs as their submitter and the daemons here all run
# as the calling user; ss (iproute2) to pick free ports; 127.0.0.1. Not needed and not
# touched: systemd, cgroups, /etc/slurm, /etc/munge, the system munged, slurmdbd.
#
# Without accounting there is no sacct: every finished job (each array task too) is
# written by jobcomp/filetxt to DIR/jobcomp.txt, which slurm_job_states reads.
# Slurm's default is kept for failed dependencies: a job whose afterok can no longer
# be met stays PENDING (DependencyNeverSatisfied) unless it was submitted with
# --kill-on-invalid-dep=yes, so a submitter that forgets the flag makes the test hang
# until slurm_wait_jobs times out.

SLURM_CLUSTER_DIR=
_slurm_pids=()    # munged slurmctld slurmd, in start order

# Prints N TCP ports that nothing on this machine listens on, from a random spot in
# 20000-29999, so two clusters (or a system slurm on 6817/6818) never clash.
_slurm_free_ports() {
  local want=$1 used p found=()
  used=" $(ss -Htanl 2>/dev/null | awk '{n = split($4, a, ":"); printf "%s ", a[n]}' || true)"
  for ((p = 20000 + RANDOM % 9000; ${#found[@]} < want && p < 30000; p++)); do
    [[ $used == *" $p "* ]] || found+=("$p")
  done
  echo "${found[@]}"
}

slurm_cluster_start() {
  local d host ctld_port slurmd_port mem layout i
  d=$(cd "${1:?slurm_cluster_start DIR}" && pwd) || return 1
  SLURM_CLUSTER_DIR=$d
  mkdir -p "$d"/{state,spool,logs}
  # munged wants every folder above its socket searchable by all (clients of any user).
  chmod 0711 "$d"
  # munged refuses a key readable by others or owned by anyone but its own user.
  dd if=/dev/urandom of="$d/munge.key" bs=1024 count=1 status=none
  chmod 0400 "$d/munge.key"
  # -F keeps every daemon in the foreground, so $! is its pid and stop needs no pid file.
  munged -F --socket="$d/munge.socket" --pid-file="$d/munged.pid" \
    --log-file="$d/munged.log" --seed-file="$d/munged.seed" --key-file="$d/munge.key" \
    --num-threads=10 >"$d/munged.out" 2>&1 &
  _slurm_pids+=($!)
  for ((i = 0; ; i++)); do
    if munge -n -S "$d/munge.socket" 2>/dev/null | unmunge -S "$d/munge.socket" >/dev/null 2>&1; then
      break
    fi
    if ((i == 50)) || ! kill -0 "${_slurm_pids[0]}" 2>/dev/null; then
      echo "slurm_cluster_start: munged did not start" >&2
      _slurm_fail
      return 1
    fi
    sleep 0.1
  done

  host=$(hostname -s)
  read -r ctld_port slurmd_port <<<"$(_slurm_free_ports 2)"
  # A bit under the machine's memory, or slurmd finds "less than configured" and drains.
  mem=$(awk '/^MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
  # The node's CPU layout is copied from slurmd -C: any mismatch drains the node.
  layout=$(slurmd -C | head -n 1 | grep -o '\(CPUs\|Boards\|SocketsPerBoard\|CoresPerSocket\|ThreadsPerCore\)=[^ ]*' | tr '\n' ' ' || true)
  cat >"$d/slurm.conf" <<EOF
ClusterName=histoflowtest
# 127.0.0.1 explicitly: no name lookups, nothing leaves the machine.
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$(id -un)
# AuthInfo points slurm's munge plugins at our munged, not the system one.
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$d/munge.socket
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/slurmctld.log
SlurmdLogFile=$d/slurmd.log
PlugStackConfig=$d/plugstack.conf
MailProg=/bin/true
# No cgroups anywhere: processes are tracked through /proc, tasks are not bound.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$d/jobcomp.txt
SchedulerType=sched/backfill
# Schedule on every submission and completion rather than at most every 3 s (default):
# a 4-task array of "true" then takes ~1-2 s end to end instead of ~6.
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# Finished jobs stay visible to squeue/scontrol for 5 minutes; jobcomp.txt keeps them all.
MinJobAge=300
KillWait=5
ReturnToService=2
SlurmdTimeout=30
NodeName=$host NodeAddr=127.0.0.1 ${layout}RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  : >"$d/plugstack.conf"   # else slurm reads /etc/slurm/plugstack.conf
  export SLURM_CONF=$d/slurm.conf
  slurmctld -D -f "$SLURM_CONF" >"$d/slurmctld.out" 2>&1 &
  _slurm_pids+=($!)
  slurmd -D -f "$SLURM_CONF" -N "$host" >"$d/slurmd.out" 2>&1 &
  _slurm_pids+=($!)

  # By the clock, not a count: a client call can itself take seconds when auth fails.
  local end=$((SECONDS + 30))
  until [[ $(timeout 5 sinfo -h -o %T 2>/dev/null) == idle ]]; do
    if ((SECONDS >= end)); then
      echo "slurm_cluster_start: the node did not come up idle within 30 s" >&2
      _slurm_fail
      return 1
    fi
    sleep 0.2
  done
}

# Shows what the daemons said, then stops them.
_slurm_fail() {
  local f
  for f in "$SLURM_CLUSTER_DIR"/{munged.out,slurmctld.log,slurmctld.out,slurmd.log,slurmd.out}; do
    if [[ -s $f ]]; then echo "===== $f"; tail -n 30 "$f"; fi
  done >&2
  slurm_cluster_stop
}

# Waits until PID has exited, for at most S seconds; non-zero if it is still there.
_slurm_wait_gone() {
  local pid=$1 s=$2 i
  for ((i = 0; i < s * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

_slurm_our_stepds() {
  local p fd
  for p in /proc/[0-9]*; do
    [[ $(cat "$p/comm" 2>/dev/null) == slurmstepd ]] || continue
    for fd in "$p"/fd/*; do
      if [[ $(readlink "$fd" 2>/dev/null) == "$SLURM_CLUSTER_DIR"/* ]]; then
        echo "${p#/proc/}"
        break
      fi
    done
  done
}

slurm_cluster_stop() {
  local i pid p end
  ((${#_slurm_pids[@]})) || return 0
  # Jobs first: slurmstepd and the job's processes outlive slurmd, so cancel whatever
  # is left and give KillWait time to act. Only while our slurmctld runs, and with our
  # config named outright: never a scancel that could reach a real cluster.
  if [[ -n ${_slurm_pids[1]:-} ]] && kill -0 "${_slurm_pids[1]}" 2>/dev/null; then
    SLURM_CONF=$SLURM_CLUSTER_DIR/slurm.conf timeout 10 scancel --partition=debug 2>/dev/null || true
    end=$((SECONDS + 15))
    while ((SECONDS < end)) &&
      [[ -n $(SLURM_CONF=$SLURM_CLUSTER_DIR/slurm.conf timeout 5 squeue -h -t PD,R,CG,S -o %i 2>/dev/null) ]]; do
      sleep 0.2
    done
  fi
  # Should a job have outlived that (slurmctld gone), its slurmstepd is ours if it holds
  # a file in our folder (slurmd's log, at least); other clusters' are left alone. The
  # job's processes go first, by process group: each batch script leads its own.
  for p in $(_slurm_our_stepds); do
    for pid in $(ps -o pgid= --ppid "$p" 2>/dev/null); do kill -KILL -- "-$pid" 2>/dev/null || true; done
    kill -KILL "$p" 2>/dev/null || true
  done
  # Reverse start order: slurmd, slurmctld, then munged, which both still use.
  for ((i = ${#_slurm_pids[@]} - 1; i >= 0; i--)); do
    pid=${_slurm_pids[i]}
    kill -TERM "$pid" 2>/dev/null || continue
    _slurm_wait_gone "$pid" 10 || { kill -KILL "$pid" 2>/dev/null; _slurm_wait_gone "$pid" 5 || true; }
    wait "$pid" 2>/dev/null || true
  done
  _slurm_pids=()
  return 0
}

# slurm_wait_jobs [--timeout S] JOBID...   (default 120 s; array job ids wait for all
# tasks). Non-zero on timeout, after listing what is still queued and why.
slurm_wait_jobs() {
  local timeout=120 ids=() left end
  while (($#)); do
    case $1 in
      --timeout) timeout=$2; shift 2 ;;
      *) ids+=("$1"); shift ;;
    esac
  done
  local IFS=, err=$SLURM_CLUSTER_DIR/squeue.err
  end=$((SECONDS + timeout))
  while :; do
    # Named jobs are listed in every state, finished ones too, so ask for live ones.
    local rc=0
    left=$(timeout 10 squeue -h -t PD,R,CG,CF,S,ST,RS,RQ,RH,SI,SO -j "${ids[*]}" -o '%i %T %r' 2>"$err") || rc=$?
    if ((rc == 0)); then
      [[ -z $left ]] && return 0
    elif grep -q 'Invalid job id' "$err"; then
      return 0   # a lone job id that slurmctld has already forgotten (MinJobAge)
    else
      left="squeue failed (exit $rc): $(cat "$err")"
    fi
    ((SECONDS >= end)) && break
    sleep 0.3
  done
  echo "slurm_wait_jobs: still queued after ${timeout} s:" >&2
  echo "$left" >&2
  return 1
}

# slurm_job_states JOBID: one "taskid state exitcode" line per finished task, sorted by
# task id, from jobcomp.txt since there is no accounting. Task "-" is a job that is not
# an array or, for an array, the tasks that never started (one record for all of them,
# e.g. CANCELLED by scancel of the whole array). The last record wins for a task logged
# twice (a requeue). exitcode is "status:signal"; scancel leaves it 0:0, state says it.
slurm_job_states() {
  local id=${1:?slurm_job_states JOBID}
  awk -v id="$id" '
    {
      delete f
      for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = substr($i, length(kv[1]) + 2) }
      # Test "in" first: merely reading f["ArrayJobId"] would create it.
      if ("ArrayJobId" in f) { if (f["ArrayJobId"] == id) s[f["ArrayTaskId"]] = f["JobState"] " " f["ExitCode"] }
      else if (f["JobId"] == id) s["-"] = f["JobState"] " " f["ExitCode"]
    }
    END { for (t in s) print t, s[t] }' "$SLURM_CLUSTER_DIR/jobcomp.txt" 2>/dev/null | sort -n
}
