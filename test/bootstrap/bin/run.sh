#!/bin/bash
# Fake Actions runner `run.sh` for test/bootstrap.test.ts. Copied into the test's runner directory;
# acts out the scenario named in ./scenario and records what it was given in $RF_TEST_LOG.
started_us=${EPOCHREALTIME//[.,]/}
set -u
log=$RF_TEST_LOG
echo "$started_us" >"$log/run-started-us"
id -un >"$log/run-user"
printf '%s\n' "$@" >"$log/run-argv"
# The JIT config is the runner's own business: it may keep it in its own directory.
printf '%s' "${ACTIONS_RUNNER_INPUT_JITCONFIG:-}" >./jitconfig.received
umask >"$log/run-umask"
hook() { bash "$1"; }
# The stand-in for /etc/shadow: what the bootstrap would report if it read through a link.
SHADOW_TIME=2001-02-03T04:05:06.789Z
# swap_in_fifo_and_link FILE: keeps renaming a FIFO, then a link to the stand-in, over FILE.
swap_in_fifo_and_link() {
  local dir
  dir=$(dirname "$1")
  while kill -0 "$PPID" 2>/dev/null; do
    mkfifo "$dir/.fifo" && mv -fT "$dir/.fifo" "$1"
    ln -sfn "$log/shadow" "$dir/.link" && mv -fT "$dir/.link" "$1"
    sleep 0.01
  done
}
scenario=$(cat ./scenario)
case $scenario in
  job)
    sleep 0.3
    hook "$ACTIONS_RUNNER_HOOK_JOB_STARTED"
    sleep 0.5
    hook "$ACTIONS_RUNNER_HOOK_JOB_COMPLETED"
    exit 0
    ;;
  interrupted-job)
    hook "$ACTIONS_RUNNER_HOOK_JOB_STARTED"
    sleep 2
    hook "$ACTIONS_RUNNER_HOOK_JOB_COMPLETED"
    exit 0
    ;;
  no-job | endless-job)
    trap 'echo TERM >"$log/run-signal"; exit 143' TERM
    [[ $scenario == endless-job ]] && hook "$ACTIONS_RUNNER_HOOK_JOB_STARTED"
    while :; do sleep 0.2; done
    ;;
  crash)
    exit 3
    ;;
  swapped-events | swapped-events-job)
    # A job swaps a FIFO and a link to a file only root may read into the event directory, over and
    # over, hoping the bootstrap's monitor (root) blocks on the FIFO or reads through the link.
    trap 'echo TERM >"$log/run-signal"; exit 143' TERM
    events=$(dirname "$(dirname "$ACTIONS_RUNNER_HOOK_JOB_STARTED")")/events
    printf '%s' "$SHADOW_TIME" >"$log/shadow"
    if [[ $scenario == swapped-events ]]; then
      swap_in_fifo_and_link "$events/job-started" &
    else
      hook "$ACTIONS_RUNNER_HOOK_JOB_STARTED"
    fi
    swap_in_fifo_and_link "$events/job-completed" &
    # Until the bootstrap stops it, or is gone (killed by the test's harness when it hung).
    while kill -0 "$PPID" 2>/dev/null; do sleep 0.2; done
    ;;
  forged-events)
    # A job writes to the event directory itself, trying to smuggle JSON into the report.
    events=$(dirname "$(dirname "$ACTIONS_RUNNER_HOOK_JOB_STARTED")")/events
    printf '%s' '2020-01-01T00:00:00.000Z"},":x":{"S":"y' >"$events/job-started"
    sleep 1.5
    exit 0
    ;;
esac
