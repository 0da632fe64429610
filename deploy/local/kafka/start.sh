#!/usr/bin/env bash
# Start a single-node KRaft Kafka broker in the background (idempotent).
#   - fetches jars on first use (fetch.sh)
#   - exits 0 right away if a broker already answers on $KAFKA_PORT
#   - formats .local/kafka/data once (cluster id kept in .local/kafka/cluster-id)
#   - runs kafka.Kafka with nohup, pid in .local/kafka/kafka.pid, log in .local/kafka/logs/
#   - waits (wait.sh) until the broker answers
#
# Usage: deploy/local/kafka/start.sh [wait-timeout-seconds, default 60]
# Env:   KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), KAFKA_HEAP_OPTS
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

wait_timeout="${1:-60}"
broker="$KAFKA_HOST:$KAFKA_PORT"

"$KAFKA_SCRIPT_DIR/fetch.sh"

# Serialize concurrent start.sh runs (the loser then finds the broker answering).
mkdir -p "$KAFKA_HOME_DIR"
exec 9>"$KAFKA_HOME_DIR/.start.lock"
flock 9

if kafka_answers "$broker"; then
  log "broker already running on $broker"
  exit 0
fi
if pid="$(kafka_running_pid)"; then
  # Started earlier but not answering yet (still booting): just wait for it.
  log "broker pid $pid is starting; waiting"
  KAFKA_BROKERS="$broker" exec "$KAFKA_SCRIPT_DIR/wait.sh" "$wait_timeout"
fi
# Something else (another broker, anything) holding our ports?
for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
  if (exec 3<>"/dev/tcp/$KAFKA_HOST/$port") 2>/dev/null; then
    die "port $KAFKA_HOST:$port is already in use by another process (not a Kafka broker answering on $broker)"
  fi
done

mkdir -p "$KAFKA_DATA_DIR" "$KAFKA_LOGS_DIR"

# Render server.properties (always, so port env changes take effect).
sed -e "s|@KAFKA_HOST@|$KAFKA_HOST|g" \
    -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
    -e "s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
    -e "s|@KAFKA_DATA_DIR@|$KAFKA_DATA_DIR|g" \
    "$KAFKA_SCRIPT_DIR/server.properties.template" >"$KAFKA_SERVER_PROPS"

# Format storage once. The cluster id is generated once and kept.
if [[ ! -f "$KAFKA_DATA_DIR/meta.properties" ]]; then
  if [[ ! -s "$KAFKA_CLUSTER_ID_FILE" ]]; then
    kafka_tool kafka.tools.StorageTool random-uuid | tr -d '[:space:]' >"$KAFKA_CLUSTER_ID_FILE"
  fi
  log "formatting $KAFKA_DATA_DIR (cluster id $(cat "$KAFKA_CLUSTER_ID_FILE"))"
  kafka_tool kafka.tools.StorageTool format \
    -t "$(cat "$KAFKA_CLUSTER_ID_FILE")" -c "$KAFKA_SERVER_PROPS" >/dev/null
fi

log "starting broker on $broker (controller $KAFKA_HOST:$KAFKA_CONTROLLER_PORT)"
# shellcheck disable=SC2086  # KAFKA_HEAP_OPTS is intentionally word-split
nohup java $KAFKA_HEAP_OPTS -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
  -Djava.awt.headless=true \
  -Dlog4j.configuration="file:$KAFKA_SCRIPT_DIR/log4j.properties" \
  -Dkafka.logs.dir="$KAFKA_LOGS_DIR" \
  -cp "$KAFKA_LIBS_DIR/*" \
  kafka.Kafka "$KAFKA_SERVER_PROPS" \
  >>"$KAFKA_LOGS_DIR/stdout.log" 2>&1 </dev/null 9>&- &   # 9>&-: don't hold the lock
pid=$!
echo "$pid" >"$KAFKA_PID_FILE"

KAFKA_BROKERS="$broker" KAFKA_WAIT_PID="$pid" "$KAFKA_SCRIPT_DIR/wait.sh" "$wait_timeout"
log "broker up on $broker (pid $(cat "$KAFKA_PID_FILE"))"
