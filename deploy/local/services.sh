#!/usr/bin/env bash
# Starts or stops the four services in the background from dist/, with logs and pids under .local/run.
#   services.sh start | stop | status | wiring
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
run="$root/.local/run"
mkdir -p "$run"
SERVICES=(ingest query cost-cap alert alert-worker)

pid_of() { [[ -f "$run/$1.pid" ]] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null && cat "$run/$1.pid"; }

port_of() { case "$1" in query) echo "${QUERY_PORT:-3000}" ;; ingest) echo "${INGEST_PORT:-3001}" ;;
  cost-cap) echo "${COST_CAP_PORT:-3002}" ;; alert) echo "${ALERT_PORT:-3003}" ;;
  alert-worker) echo "${ALERT_WORKER_PORT:-3004}" ;; esac; }

# How the services find each other, as docker-compose and deploy/k8s wire them: query carries out the quick
# actions through cost-cap and alert (their tokens come from the environment: the Makefile exports
# .local/secrets.env) and links to the observability stack of `make up OBS=1`. `services.sh wiring` prints them.
export COST_CAP_URL="${COST_CAP_URL:-http://127.0.0.1:$(port_of cost-cap)}"
export ALERT_URL="${ALERT_URL:-http://127.0.0.1:$(port_of alert)}"
export GRAFANA_URL="${GRAFANA_URL:-http://127.0.0.1:${OBS_GRAFANA_PORT:-3300}}"
wiring() { for v in COST_CAP_URL ALERT_URL GRAFANA_URL; do echo "$v=${!v}"; done; }

wait_healthy() { # name port
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$2/health/ready" >/dev/null 2>&1 && return 0
    pid_of "$1" >/dev/null || { echo "[services] $1 exited; last log lines:" >&2; tail -20 "$run/$1.log" >&2; return 1; }
    sleep 0.5
  done
  echo "[services] $1 did not become ready on port $2" >&2; tail -20 "$run/$1.log" >&2; return 1
}

start() {
  for s in "${SERVICES[@]}"; do
    if pid_of "$s" >/dev/null; then echo "[services] $s already running (pid $(pid_of "$s"))"; continue; fi
    PORT="$(port_of "$s")" nohup node --enable-source-maps "$root/dist/$s/services/$s/src/main.js" >>"$run/$s.log" 2>&1 &
    echo $! >"$run/$s.pid"
  done
  for s in "${SERVICES[@]}"; do wait_healthy "$s" "$(port_of "$s")"; echo "[services] $s ready on :$(port_of "$s")"; done
}

stop() {
  for s in "${SERVICES[@]}"; do
    local pid; pid="$(pid_of "$s")" || { rm -f "$run/$s.pid"; continue; }
    kill "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    rm -f "$run/$s.pid"; echo "[services] stopped $s"
  done
}

status() { for s in "${SERVICES[@]}"; do echo "$s: $(pid_of "$s" >/dev/null && echo "running (pid $(pid_of "$s"))" || echo stopped)"; done; }

"${1:-status}"
