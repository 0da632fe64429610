#!/usr/bin/env bash
# Download Kafka jars (broker + CLI tools) into .local/kafka/libs via Maven.
# No-op when a complete copy for the current pom.xml is already there.
#
# Usage: deploy/local/kafka/fetch.sh [--force]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ "${1:-}" != "--force" ]] && kafka_libs_ok; then
  exit 0
fi

mkdir -p "$KAFKA_HOME_DIR"
# Serialize concurrent fetches; re-check once we hold the lock.
exec 9>"$KAFKA_HOME_DIR/.fetch.lock"
flock 9
if [[ "${1:-}" != "--force" ]] && kafka_libs_ok; then
  exit 0
fi

command -v mvn >/dev/null || die "mvn not found (need Maven 3.x + JDK 17)"
command -v java >/dev/null || die "java not found (need JDK 17)"

# Copy into a temp dir and swap it in, so an interrupted fetch never leaves a
# half-filled libs dir that looks complete (and stale jars never linger).
tmp="$KAFKA_HOME_DIR/libs.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"

log "fetching Kafka $KAFKA_VERSION jars with Maven -> $KAFKA_LIBS_DIR"
mvn_log="$KAFKA_HOME_DIR/fetch.log"
if ! mvn -B -Dstyle.color=never -f "$KAFKA_SCRIPT_DIR/pom.xml" \
      dependency:copy-dependencies -Dkafka.libs.dir="$tmp" >"$mvn_log" 2>&1; then
  tail -n 40 "$mvn_log" >&2
  die "maven failed (full log: $mvn_log)"
fi

ls "$tmp"/kafka_2.13-"$KAFKA_VERSION".jar "$tmp"/kafka-tools-"$KAFKA_VERSION".jar >/dev/null \
  || die "maven finished but the kafka jars are missing in $tmp"
kafka_libs_stamp >"$tmp/.complete"

rm -rf "$KAFKA_LIBS_DIR"
mv "$tmp" "$KAFKA_LIBS_DIR"
log "fetched $(find "$KAFKA_LIBS_DIR" -name '*.jar' | wc -l) jars"
