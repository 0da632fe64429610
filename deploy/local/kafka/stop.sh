#!/usr/bin/env bash
# Stop the broker started by start.sh (pid file .local/kafka/kafka.pid).
# Sends SIGTERM (clean shutdown), waits up to N seconds, then SIGKILL.
#
# Usage: deploy/local/kafka/stop.sh [timeout-seconds, default 30]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

timeout_s="${1:-30}"

if ! pid="$(kafka_running_pid)"; then
  log "not running"
  rm -f "$KAFKA_PID_FILE"
  exit 0
fi

log "stopping broker pid $pid"
kill -TERM "$pid"
deadline=$(( SECONDS + timeout_s ))
while kill -0 "$pid" 2>/dev/null; do
  if (( SECONDS >= deadline )); then
    log "still running after ${timeout_s}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 1
    break
  fi
  sleep 0.3
done
rm -f "$KAFKA_PID_FILE"
log "stopped"
