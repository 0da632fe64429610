#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer at DATABASE_URL / REDIS_URL (defaults on 127.0.0.1).
# When one does not answer, starts the machine's service; installs it with apt-get when running as
# root and it is missing; otherwise stops with a message that says what to do.
set -euo pipefail

DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/agentmeter}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"

log() { printf '[datastores] %s\n' "$*" >&2; }
die() { printf '[datastores] ERROR: %s\n' "$*" >&2; exit 1; }

# host and port out of a URL such as postgres://user@host:5432/db
host_of() { local rest="${1#*://}"; rest="${rest#*@}"; rest="${rest%%/*}"; echo "${rest%%:*}"; }
port_of() { local rest="${1#*://}"; rest="${rest#*@}"; rest="${rest%%/*}"; [[ "$rest" == *:* ]] && echo "${rest##*:}" || echo "$2"; }

answers() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for() { # name host port
  for _ in $(seq 1 60); do answers "$2" "$3" && return 0; sleep 0.5; done
  die "$1 did not start answering on $2:$3"
}

is_local() { [[ "$1" == 127.0.0.1 || "$1" == localhost || "$1" == ::1 ]]; }

apt_install() {
  [[ "$(id -u)" == 0 ]] || die "$1 is not installed. Install it (e.g. sudo apt-get install -y $*) or point ${2^^}_URL at a running server."
  log "installing $* with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  local host port; host="$(host_of "$DATABASE_URL")"; port="$(port_of "$DATABASE_URL" 5432)"
  answers "$host" "$port" && return 0
  is_local "$host" || die "PostgreSQL at $host:$port does not answer; start it or fix DATABASE_URL."
  command -v pg_ctlcluster >/dev/null || apt_install postgresql database
  local version; version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)"
  [[ -n "$version" ]] || die "no PostgreSQL cluster under /etc/postgresql; create one with pg_createcluster."
  [[ "$(id -u)" == 0 ]] || die "PostgreSQL is not running. Start it: sudo pg_ctlcluster $version main start"
  log "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for PostgreSQL "$host" "$port"
}

ensure_redis() {
  local host port; host="$(host_of "$REDIS_URL")"; port="$(port_of "$REDIS_URL" 6379)"
  answers "$host" "$port" && return 0
  is_local "$host" || die "Redis at $host:$port does not answer; start it or fix REDIS_URL."
  command -v redis-server >/dev/null || apt_install redis-server redis
  log "starting Redis on port $port"
  mkdir -p /tmp/agentmeter-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
    --dir /tmp/agentmeter-redis --logfile /tmp/agentmeter-redis/redis.log
  wait_for Redis "$host" "$port"
}

ensure_postgres
ensure_redis
log "PostgreSQL and Redis answer"
