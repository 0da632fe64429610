#!/usr/bin/env bash
# Wait until a broker answers Kafka requests (ApiVersions) on $KAFKA_BROKERS
# (default 127.0.0.1:9092). Fails with the log tail on timeout, or early if the
# broker process started by start.sh dies (pid from $KAFKA_WAIT_PID, else the
# pid file when that process is alive at the start).
#
# Usage: deploy/local/kafka/wait.sh [timeout-seconds, default 60]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

timeout_s="${1:-60}"
deadline=$(( SECONDS + timeout_s ))
watch_pid="${KAFKA_WAIT_PID:-$(kafka_running_pid || true)}"

# Last lines of the broker logs, without Java stack frames.
show_log_tail() {
  local f
  for f in "$KAFKA_LOG_FILE" "$KAFKA_LOGS_DIR/stdout.log"; do
    [[ -s "$f" ]] || continue
    printf -- '--- %s\n' "$f" >&2
    grep -Ev '^[[:space:]]+(at |\.\.\. [0-9]+ more)' "$f" | tail -n 25 >&2 || true
  done
}

until kafka_answers "$KAFKA_BROKERS"; do
  if [[ -n "$watch_pid" ]] && ! kill -0 "$watch_pid" 2>/dev/null; then
    log "broker process $watch_pid exited before answering on $KAFKA_BROKERS; last log lines:"
    show_log_tail
    exit 1
  fi
  if (( SECONDS >= deadline )); then
    log "broker did not answer on $KAFKA_BROKERS within ${timeout_s}s; last log lines:"
    show_log_tail
    exit 1
  fi
  sleep 0.5
done
