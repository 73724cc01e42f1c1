#!/bin/bash
# runner-fleet instance bootstrap: the EC2 user data of every runner instance.
#
# Takes this instance's JIT runner config from its DynamoDB hand-off item (and strips it from the
# item in the same call), runs exactly one job with the Actions runner as the runner user, reports
# progress on the same item, and shuts the machine down on any exit (the launch template makes
# instance-initiated shutdown terminate the instance).
#
# A pool member's first boot takes a warm-up marker instead: it warms its volume, installs a copy of
# this script as a systemd unit (RF_BOOT=restart) and waits to be stopped; after each later start the
# unit takes a JIT config and runs the one job.
#
# Rendered by src/runner-bootstrap.ts (renderBootstrap): the __RF_*__ values below are filled in at
# deploy time and none is a secret. Other RF_* environment variables than RF_BOOT override paths and
# commands for the tests only; cloud-init and the unit run this with a clean environment.
set -euo pipefail
umask 077

REGION='__RF_REGION__'
HANDOFF_TABLE='__RF_HANDOFF_TABLE__'
RUNNER_ROLE_ID='__RF_RUNNER_ROLE_ID__'
RUNNER_USER='__RF_RUNNER_USER__'
RUNNER_DIR='__RF_RUNNER_DIR__'
IDLE_TIMEOUT_SECONDS='__RF_IDLE_TIMEOUT_SECONDS__'
MAX_RUNTIME_SECONDS='__RF_MAX_RUNTIME_SECONDS__'
HANDOFF_WAIT_SECONDS='__RF_HANDOFF_WAIT_SECONDS__'
DYNAMODB_ENDPOINT='__RF_DYNAMODB_ENDPOINT__'
WARMUP_SECONDS='__RF_WARMUP_SECONDS__'
STOP_WAIT_SECONDS='__RF_STOP_WAIT_SECONDS__'

IMDS=${RF_IMDS_ENDPOINT:-http://169.254.169.254}
DDB=${RF_DYNAMODB_ENDPOINT:-$DYNAMODB_ENDPOINT}
STATE_DIR=${RF_STATE_DIR:-/run/runner-fleet}
read -ra SHUTDOWN_CMD <<<"${RF_SHUTDOWN_CMD:-shutdown -h now}"
BOOT=${RF_BOOT:-first}
LIB_DIR=${RF_LIB_DIR:-/var/lib/runner-fleet}
UNIT_DIR=${RF_UNIT_DIR:-/etc/systemd/system}
read -ra SYSTEMCTL <<<"${RF_SYSTEMCTL:-systemctl}"
read -ra WARM_PATHS <<<"${RF_WARM_PATHS:-$RUNNER_DIR /var/lib/docker /opt/hostedtoolcache}"
read -ra WARM_READER <<<"${RF_WARM_READER:-cat}"
POLL_SECONDS=1
SPOT_POLL_SECONDS=5

START_S=$EPOCHSECONDS
START_US=${EPOCHREALTIME//[.,]/}
RUNNER_PID=''
STOP_REASON=''
JOB_STARTED=''
JOB_FINISHED=''
INTERRUPTED=''
USE_CLI=''
AWAITING_STOP=''

log() { printf '%s runner-fleet: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

iso_now() { date -u +%Y-%m-%dT%H:%M:%S.%3NZ; }

# --- instance metadata (IMDSv2) ---------------------------------------------------------------

IMDS_TOKEN=''
IMDS_TOKEN_AT=0
imds_token() {
  if [[ -z $IMDS_TOKEN ]] || ((EPOCHSECONDS - IMDS_TOKEN_AT > 3600)); then
    IMDS_TOKEN=$(curl -sS --fail --connect-timeout 1 --max-time 3 --retry 5 --retry-connrefused \
      -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600' "$IMDS/latest/api/token")
    IMDS_TOKEN_AT=$EPOCHSECONDS
  fi
}

# imds PATH: prints the value under /latest/PATH; fails on any non-2xx answer. Call imds_token
# first, in this shell: a token fetched inside $(imds ...) would be lost with the subshell.
imds() {
  curl -sS --fail --connect-timeout 1 --max-time 3 -H "X-aws-ec2-metadata-token: $IMDS_TOKEN" "$IMDS/latest/$1"
}

# The instance profile's credentials can lag the first seconds of boot: retry for up to ~20 s.
AWS_AK='' AWS_SK='' AWS_TOKEN='' CREDS_AT=0
load_credentials() {
  local role json attempt
  local creds=()
  for ((attempt = 1; attempt <= 40; attempt++)); do
    imds_token
    if role=$(imds meta-data/iam/security-credentials/ 2>/dev/null) && [[ -n $role ]] &&
      json=$(imds "meta-data/iam/security-credentials/${role%%$'\n'*}" 2>/dev/null); then
      mapfile -t creds < <(jq -r '.AccessKeyId // "", .SecretAccessKey // "", .Token // ""' <<<"$json")
      if ((${#creds[@]} == 3)) && [[ -n ${creds[0]} && -n ${creds[1]} ]]; then
        AWS_AK=${creds[0]} AWS_SK=${creds[1]} AWS_TOKEN=${creds[2]}
        CREDS_AT=$EPOCHSECONDS
        return 0
      fi
    fi
    sleep 0.5
  done
  log "no instance profile credentials from IMDS"
  return 1
}

# --- DynamoDB (JSON protocol, SigV4 by curl) --------------------------------------------------

# ddb_update BODY: one UpdateItem; the response lands in DDB_OUT (not printed: callers must not run
# this in a subshell, which would lose USE_CLI and refreshed credentials). Returns 0 on success, 3
# when the condition failed, 1 on any other error. The credentials reach curl on stdin (-K -), never
# on its command line.
DDB_OUT=''
ddb_update() {
  local body=$1 out code type
  DDB_OUT=''
  if [[ -z $USE_CLI ]]; then
    out=$(curl -sS --connect-timeout 2 --max-time 5 --aws-sigv4 "aws:amz:$REGION:dynamodb" -K - \
      -H 'Content-Type: application/x-amz-json-1.0' -H 'X-Amz-Target: DynamoDB_20120810.UpdateItem' \
      -w '\n%{http_code}' --data-binary "$body" "$DDB/" \
      <<<"user = \"$AWS_AK:$AWS_SK\""$'\n'"header = \"x-amz-security-token: $AWS_TOKEN\"") || return 1
    code=${out##*$'\n'}
    out=${out%$'\n'*}
    if [[ $code == 200 ]]; then
      DDB_OUT=$out
      return 0
    fi
    type=$(jq -r '.__type // "" | sub(".*#"; "")' <<<"$out" 2>/dev/null || true)
    case $type in
      ConditionalCheckFailedException) return 3 ;;
      InvalidSignatureException | IncompleteSignatureException | MissingAuthenticationTokenException)
        # Ubuntu 24.04's curl 8.5 signs the x-amz-* headers we pass (security token, target);
        # 22.04's 7.81 signed only content-type, host and x-amz-date. Kept: a config's own amiId may
        # boot an older base whose curl still signs too little, and then the AWS CLI signs it all.
        log "DynamoDB rejected curl's signature ($type); using the AWS CLI from now on"
        USE_CLI=1
        ;;
      ExpiredTokenException)
        load_credentials || true
        return 1
        ;;
      *)
        log "DynamoDB UpdateItem failed: HTTP $code ${type:-}"
        return 1
        ;;
    esac
  fi
  ddb_update_cli "$body"
}

ddb_update_cli() {
  if DDB_OUT=$(aws dynamodb update-item --cli-input-json "$1" --region "$REGION" --endpoint-url "$DDB" \
    --output json 2>"$STATE_DIR/aws-cli.err"); then
    return 0
  fi
  if grep -q ConditionalCheckFailedException "$STATE_DIR/aws-cli.err"; then return 3; fi
  log "aws dynamodb update-item failed: $(head -c 300 "$STATE_DIR/aws-cli.err")"
  return 1
}

# update_json EXPRESSION CONDITION VALUES [EXTRA]: the UpdateItem request on this instance's item.
update_json() {
  printf '{"TableName":"%s","Key":{"handoffKey":{"S":"%s"}},"UpdateExpression":"%s","ConditionExpression":"%s","ExpressionAttributeValues":{%s}%s}' \
    "$HANDOFF_TABLE" "$HANDOFF_KEY" "$1" "$2" "$3" "${4:-}"
}

# report EXPRESSION VALUES: records progress on the item (never creates it: the condition needs it
# to exist). A failed report is logged, never fatal.
report() {
  local attempt
  if ((EPOCHSECONDS - CREDS_AT > 300)); then load_credentials || true; fi
  for ((attempt = 1; attempt <= 3; attempt++)); do
    if ddb_update "$(update_json "$1" 'attribute_exists(handoffKey)' "$2")"; then return 0; fi
    sleep 1
  done
  log "could not record: $1"
}

# report_time ATTRIBUTE TIME: records one timestamp on the item.
report_time() {
  report "SET $1 = :t" "\":t\":{\"S\":\"$2\"}"
}

# take_handoff: polls the hand-off until the launcher has written the JIT config (or, on a first
# boot, the reconciler a pool member's warm-up marker) and takes it: one conditional UpdateItem
# removes it and returns its old value (ReturnValues UPDATED_OLD), so the config is read exactly once
# and never stays in the table after this instance has it. After a start only a JIT config counts.
JIT_CONFIG='' WARMUP=''
take_handoff() {
  local deadline=$((EPOCHSECONDS + HANDOFF_WAIT_SECONDS)) body rc
  local take='REMOVE jitConfig, warmup' cond='attribute_exists(jitConfig) OR attribute_exists(warmup)'
  [[ $BOOT == restart ]] && take='REMOVE jitConfig' cond='attribute_exists(jitConfig)'
  # The item now records this instance's run: keep it past the launcher's short hand-off TTL.
  local expires=$((EPOCHSECONDS + MAX_RUNTIME_SECONDS + 86400))
  while :; do
    body=$(update_json "$take SET fetchedAt = :now, expiresAt = :exp" "$cond" \
      "\":now\":{\"S\":\"$(iso_now)\"},\":exp\":{\"N\":\"$expires\"}" ',"ReturnValues":"UPDATED_OLD"')
    rc=0
    ddb_update "$body" || rc=$?
    if ((rc == 0)); then
      JIT_CONFIG=$(jq -r '.Attributes.jitConfig.S // empty' <<<"$DDB_OUT")
      [[ -n $JIT_CONFIG ]] || WARMUP=$(jq -r '.Attributes.warmup.S // empty' <<<"$DDB_OUT")
      DDB_OUT=
      [[ -n $JIT_CONFIG$WARMUP ]] && return 0
    fi
    if ((EPOCHSECONDS >= deadline)); then
      log "no JIT config in the hand-off after ${HANDOFF_WAIT_SECONDS}s"
      return 1
    fi
    sleep "$POLL_SECONDS"
  done
}

# --- the runner -------------------------------------------------------------------------------

HOOK_DIR="$STATE_DIR/hooks"
EVENT_DIR="$STATE_DIR/events"

# The runner's job hooks run as the runner user inside the job: they only drop a timestamp in the
# event directory (atomically, by rename); this script reports it, so no AWS call runs in a job.
prepare_runner() {
  # Before the JIT config is taken: an image that cannot run it leaves it for the next launch.
  if ! id -u "$RUNNER_USER" >/dev/null 2>&1 || [[ ! -x $RUNNER_DIR/run.sh ]]; then
    log "no user $RUNNER_USER or no $RUNNER_DIR/run.sh: not a runner-fleet image?"
    return 1
  fi
  install -d -m 0755 "$STATE_DIR" "$HOOK_DIR"
  rm -rf -- "$EVENT_DIR" # no stale event, whatever survived of an earlier boot
  install -d -m 0700 -o "$RUNNER_USER" -g "$(id -g "$RUNNER_USER")" "$EVENT_DIR"
  local event
  for event in job-started job-completed; do
    printf '#!/bin/bash\n# runner-fleet: tells the bootstrap that a job event happened.\ndate -u +%%Y-%%m-%%dT%%H:%%M:%%S.%%3NZ >%q && mv -f %q %q\n' \
      "$EVENT_DIR/$event.tmp" "$EVENT_DIR/$event.tmp" "$EVENT_DIR/$event" >"$HOOK_DIR/$event.sh"
    chmod 0755 "$HOOK_DIR/$event.sh"
  done
}

# The JIT config goes to the runner in ACTIONS_RUNNER_INPUT_JITCONFIG, which the runner reads like
# --jitconfig and then removes from its own environment: unlike an argument it never appears in the
# world-readable /proc/<pid>/cmdline (ps), only in the environ of the runner's own processes.
start_runner() {
  local home run_as
  home=$(getent passwd "$RUNNER_USER" | cut -d: -f6)
  if [[ -n ${RF_RUN_AS:-} ]]; then
    run_as=("$RF_RUN_AS" "$RUNNER_USER")
  else
    run_as=(setpriv --reuid="$RUNNER_USER" --regid="$(id -g "$RUNNER_USER")" --init-groups --)
  fi
  (
    cd "$RUNNER_DIR"
    umask 022 # this script's 077 is for its own files; jobs get the usual one
    export HOME="$home" USER="$RUNNER_USER" LOGNAME="$RUNNER_USER"
    export ACTIONS_RUNNER_HOOK_JOB_STARTED="$HOOK_DIR/job-started.sh"
    export ACTIONS_RUNNER_HOOK_JOB_COMPLETED="$HOOK_DIR/job-completed.sh"
    export ACTIONS_RUNNER_INPUT_JITCONFIG="$JIT_CONFIG"
    # setsid: the runner gets its own process group, so the watchdogs can stop all of it.
    exec setsid "${run_as[@]}" ./run.sh
  ) &
  RUNNER_PID=$!
  JIT_CONFIG=''
}

stop_runner() {
  local i
  STOP_REASON=$1
  log "stopping the runner: $1"
  kill -TERM -- "-$RUNNER_PID" 2>/dev/null || true
  for ((i = 0; i < 30; i++)); do
    kill -0 "$RUNNER_PID" 2>/dev/null || return 0
    sleep 1
  done
  kill -KILL -- "-$RUNNER_PID" 2>/dev/null || true
}

# read_event FILE: the first bytes of a job event file. A job runs as the runner user and can put
# anything in the event directory, and this script runs as root: only a regular file counts, and the
# read can neither follow a link swapped in after the test (nofollow: a link to /etc/shadow) nor wait
# on a FIFO or a leased file (nonblock), nor read much or for long.
read_event() {
  [[ -f $1 && ! -L $1 ]] || return 1
  timeout -s KILL 2 dd if="$1" iflag=nonblock,nofollow bs=40 count=1 status=none 2>/dev/null
}

# event_time FILE: fails if FILE holds no event; else the hook's timestamp, or now if the file holds
# anything else (nothing a job writes may reach the request unchecked).
event_time() {
  local at
  at=$(read_event "$1") && [[ -n $at ]] || return 1
  [[ $at =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$ ]] || at=$(iso_now)
  printf '%s' "$at"
}

report_job_events() {
  local at
  if [[ -z $JOB_STARTED ]] && at=$(event_time "$EVENT_DIR/job-started"); then
    JOB_STARTED=$at
    log "job started"
    report_time jobStartedAt "$JOB_STARTED"
  fi
  if [[ -z $JOB_FINISHED ]] && at=$(event_time "$EVENT_DIR/job-completed"); then
    JOB_FINISHED=$at
    log "job finished"
    report_time jobFinishedAt "$JOB_FINISHED"
  fi
}

# A spot interruption notice gives about two minutes: record it and let the job run on; the
# instance is reclaimed either way, and the control plane learns why from the item.
check_spot_notice() {
  local code
  imds_token || return 0
  code=$(curl -s -o /dev/null -w '%{http_code}' --connect-timeout 1 --max-time 2 \
    -H "X-aws-ec2-metadata-token: $IMDS_TOKEN" "$IMDS/latest/meta-data/spot/instance-action" || true)
  if [[ $code == 200 ]]; then
    INTERRUPTED=$(iso_now)
    log "spot interruption notice"
    report_time interruptedAt "$INTERRUPTED"
  fi
}

monitor_runner() {
  local idle_deadline=$((EPOCHSECONDS + IDLE_TIMEOUT_SECONDS)) run_deadline=$((START_S + MAX_RUNTIME_SECONDS))
  local last_spot=0
  while kill -0 "$RUNNER_PID" 2>/dev/null; do
    report_job_events
    if [[ -z $JOB_STARTED ]] && ((EPOCHSECONDS >= idle_deadline)); then
      stop_runner idle-timeout
      break
    fi
    if ((EPOCHSECONDS >= run_deadline)); then
      stop_runner max-runtime
      break
    fi
    if [[ -z $INTERRUPTED ]] && ((EPOCHSECONDS - last_spot >= SPOT_POLL_SECONDS)); then
      check_spot_notice
      last_spot=$EPOCHSECONDS
    fi
    sleep "$POLL_SECONDS"
  done
}

# --- a pool member's first boot ---------------------------------------------------------------

# A volume restored from a snapshot fetches each block from S3 on its first read: read once what a
# first job reads (the runner, pre-pulled images, tool cache). Regular files on the root file system
# only (-xdev, no link followed), for at most WARMUP_SECONDS; a partial warm-up only costs speed.
warm_volume() {
  local dir dirs=()
  for dir in "${WARM_PATHS[@]}"; do [[ -d $dir ]] && dirs+=("$dir"); done
  ((${#dirs[@]})) || return 0
  log "warming ${dirs[*]}"
  find "${dirs[@]}" -xdev -type f -print0 |
    timeout "$WARMUP_SECONDS" xargs -0 -r -P 8 -n 64 "${WARM_READER[@]}" >/dev/null ||
    log "warm-up incomplete"
}

# User data runs once per instance: this unit runs the bootstrap at every later boot, as soon as the
# network is up (not after cloud-final). Type=simple: no start timeout (a job runs for hours) and
# nothing waits for it; no Restart: one run per boot. Enabled without a reload: it is for next boot.
install_restart_unit() {
  install -d -m 0700 "$LIB_DIR"
  install -m 0700 "${BASH_SOURCE[0]}" "$LIB_DIR/bootstrap.sh"
  printf '%s\n' '[Unit]' 'Description=runner-fleet bootstrap after a start' \
    'Wants=network-online.target' 'After=network-online.target' '[Service]' 'Type=simple' \
    'Environment=RF_BOOT=restart' "ExecStart=$LIB_DIR/bootstrap.sh" 'StandardOutput=journal+console' \
    '[Install]' 'WantedBy=multi-user.target' >"$UNIT_DIR/runner-fleet-bootstrap.service"
  chmod 0644 "$UNIT_DIR/runner-fleet-bootstrap.service"
  "${SYSTEMCTL[@]}" enable --no-reload runner-fleet-bootstrap.service
  sync
}

# Warm, arrange the next boot, tell the reconciler, and wait for its StopInstances. Never returns:
# a stop ends it (see finish); not stopped in time, it fails, and the shutdown terminates the member.
warm_up() {
  warm_volume
  install_restart_unit
  AWAITING_STOP=1 # from now on the reconciler may stop it
  report_time warmedAt "$(iso_now)"
  log "warm: waiting up to ${STOP_WAIT_SECONDS}s to be stopped"
  local deadline=$((EPOCHSECONDS + STOP_WAIT_SECONDS))
  while ((EPOCHSECONDS < deadline)); do sleep "$POLL_SECONDS"; done
  log "not stopped after ${STOP_WAIT_SECONDS}s"
  exit 1
}

finish() {
  local status=$? code=0
  set +e
  trap - EXIT INT TERM
  # Terminated while awaiting the stop: the system is stopping (the reconciler's StopInstances). This
  # script's shutdown must not race it: needless, and the template terminates on a guest shutdown.
  if [[ -n $AWAITING_STOP ]] && ((status == 143)); then
    log "stopped while warm"
    return
  fi
  if [[ -n $RUNNER_PID ]]; then
    kill -0 "$RUNNER_PID" 2>/dev/null && stop_runner "${STOP_REASON:-bootstrap-exit}"
    wait "$RUNNER_PID"
    code=$?
    report_job_events
    report 'SET runnerExitedAt = :t, runnerExitCode = :c, stopReason = :r' \
      "\":t\":{\"S\":\"$(iso_now)\"},\":c\":{\"N\":\"$code\"},\":r\":{\"S\":\"${STOP_REASON:-runner-exited}\"}"
  fi
  log "shutting down (bootstrap status $status, runner exit $code)"
  "${SHUTDOWN_CMD[@]}"
}

main() {
  trap finish EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
  local instance_id
  imds_token
  instance_id=$(imds meta-data/instance-id)
  [[ $instance_id =~ ^i-[0-9a-f]+$ ]] || {
    log "unexpected instance id from IMDS"
    return 1
  }
  HANDOFF_KEY="$RUNNER_ROLE_ID:$instance_id"
  load_credentials
  prepare_runner
  take_handoff
  [[ -z $WARMUP ]] || warm_up # a pool member's first boot ends there
  start_runner
  local now_us=${EPOCHREALTIME//[.,]/}
  log "runner started $(((now_us - START_US) / 1000)) ms after boot script start"
  report_time runnerStartedAt "$(iso_now)"
  monitor_runner
}

main "$@"
