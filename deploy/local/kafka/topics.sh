#!/usr/bin/env bash
# Create the AgentMeter topics on the local broker, idempotently (--if-not-exists).
#
# Usage: deploy/local/kafka/topics.sh [topic ...]   # default: the 4 topics below
#        deploy/local/kafka/topics.sh --list        # list existing topics
# Env:   KAFKA_BROKERS (127.0.0.1:9092), KAFKA_PARTITIONS (3),
#        KAFKA_TOPIC_PREFIX ("" - prepended to every name, e.g. "test.")
#
# One TopicCommand JVM per topic (~0.6s each): TopicCommand accepts a single
# --topic for --create, and its main() calls System.exit.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEFAULT_TOPICS=(agent.events.v1 agent.events.dlq.v1 agent.control.v1 agent.alerts.v1)
partitions="${KAFKA_PARTITIONS:-3}"
prefix="${KAFKA_TOPIC_PREFIX:-}"

kafka_libs_ok || die "Kafka jars missing; run deploy/local/kafka/fetch.sh (or start.sh) first"
kafka_answers "$KAFKA_BROKERS" || die "no broker answering on $KAFKA_BROKERS (run deploy/local/kafka/start.sh)"

topic_cmd() { kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS" "$@"; }

if [[ "${1:-}" == "--list" ]]; then
  topic_cmd --list --exclude-internal
  exit 0
fi

topics=("$@")
(( ${#topics[@]} )) || topics=("${DEFAULT_TOPICS[@]}")

for t in "${topics[@]}"; do
  # grep drops TopicCommand's "names with '.' or '_' could collide" notice.
  topic_cmd --create --if-not-exists --topic "$prefix$t" \
      --partitions "$partitions" --replication-factor 1 2>&1 \
    | { grep -v -e "^WARNING: Due to limitations in metric names" -e '^$' || true; }
  log "topic $prefix$t ready ($partitions partitions)"
done
