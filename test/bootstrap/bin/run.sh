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
  forged-events)
    # A job writes to the event directory itself, trying to smuggle JSON into the report.
    events=$(dirname "$(dirname "$ACTIONS_RUNNER_HOOK_JOB_STARTED")")/events
    printf '%s' '2020-01-01T00:00:00.000Z"},":x":{"S":"y' >"$events/job-started"
    sleep 1.5
    exit 0
    ;;
esac
