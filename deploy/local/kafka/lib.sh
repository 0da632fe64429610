# shellcheck shell=bash disable=SC2034  # vars are used by the sourcing scripts
# Shared settings for the local Kafka scripts. Sourced, not executed:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Env knobs (all optional):
#   KAFKA_PORT              PLAINTEXT listener port          (default 9092)
#   KAFKA_CONTROLLER_PORT   KRaft controller listener port   (default 9093)
#   KAFKA_BROKERS           bootstrap address for clients    (default 127.0.0.1:$KAFKA_PORT)
#   KAFKA_HEAP_OPTS         broker heap                      (default -Xms256m -Xmx768m)
#   KAFKA_HOME_DIR          state dir                        (default <repo>/.local/kafka)
#   KAFKA_LIBS_DIR          broker jars                      (default $KAFKA_HOME_DIR/libs; tests
#                           starting a private broker in a temp KAFKA_HOME_DIR point it at the shared jars)

KAFKA_SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$KAFKA_SCRIPT_DIR/../../.." && pwd)"

KAFKA_VERSION="3.9.1"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HOST="127.0.0.1"
KAFKA_BROKERS="${KAFKA_BROKERS:-$KAFKA_HOST:$KAFKA_PORT}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"

KAFKA_HOME_DIR="${KAFKA_HOME_DIR:-$REPO_ROOT/.local/kafka}"
KAFKA_LIBS_DIR="${KAFKA_LIBS_DIR:-$KAFKA_HOME_DIR/libs}"
KAFKA_DATA_DIR="$KAFKA_HOME_DIR/data"
KAFKA_LOGS_DIR="$KAFKA_HOME_DIR/logs"
KAFKA_LOG_FILE="$KAFKA_LOGS_DIR/server.log"
KAFKA_PID_FILE="$KAFKA_HOME_DIR/kafka.pid"
KAFKA_CLUSTER_ID_FILE="$KAFKA_HOME_DIR/cluster-id"
KAFKA_SERVER_PROPS="$KAFKA_HOME_DIR/server.properties"
# Written by fetch.sh after a complete copy; holds version + pom checksum.
KAFKA_LIBS_MARKER="$KAFKA_LIBS_DIR/.complete"

log() { printf '[kafka] %s\n' "$*" >&2; }
die() { printf '[kafka] ERROR: %s\n' "$*" >&2; exit 1; }

# Expected marker content: changes whenever the version or pom.xml changes.
kafka_libs_stamp() {
  printf '%s %s\n' "$KAFKA_VERSION" "$(sha256sum "$KAFKA_SCRIPT_DIR/pom.xml" | cut -d' ' -f1)"
}

kafka_libs_ok() {
  [[ -f "$KAFKA_LIBS_MARKER" ]] && [[ "$(cat "$KAFKA_LIBS_MARKER")" == "$(kafka_libs_stamp)" ]]
}

# Run a Kafka CLI class with quiet (WARN, stderr) logging.
#   kafka_tool org.apache.kafka.tools.TopicCommand --list --bootstrap-server ...
kafka_tool() {
  local main="$1"; shift
  java -Xms64m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j.configuration="file:$KAFKA_SCRIPT_DIR/tools-log4j.properties" \
    -cp "$KAFKA_LIBS_DIR/*" "$main" "$@"
}

# Pid of the broker started by start.sh, if it is still alive (prints it).
kafka_running_pid() {
  local pid
  [[ -f "$KAFKA_PID_FILE" ]] || return 1
  pid="$(cat "$KAFKA_PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  # Guard against pid reuse: must be our kafka.Kafka JVM.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
  printf '%s\n' "$pid"
}

# True when a broker on host:port answers a Kafka ApiVersions (v0) request
# with error_code 0. Pure bash (no JVM), ~ms. Brokers only process requests
# once fully started, so an open TCP port alone is not enough.
kafka_answers() {
  local hostport="${1:-$KAFKA_BROKERS}"
  hostport="${hostport%%,*}"            # first bootstrap server only
  local host="${hostport%:*}" port="${hostport##*:}"
  local reply
  # shellcheck disable=SC2016  # $0/$1 expand in the inner bash
  reply="$(timeout 3 bash -c '
      exec 3<>"/dev/tcp/$0/$1" || exit 1
      # size=11 | api_key=18 (ApiVersions) | api_version=0 | correlation_id=0x4b4d | client_id="w"
      printf "\x00\x00\x00\x0b\x00\x12\x00\x00\x00\x00\x4b\x4d\x00\x01w" >&3
      head -c 10 <&3 | od -An -tx1 | tr -d " \n"
    ' "$host" "$port" 2>/dev/null)" || return 1
  # bytes 4..7 = correlation id, 8..9 = error_code
  [[ "${reply:8:12}" == "00004b4d0000" ]]
}
