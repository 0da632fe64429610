#!/usr/bin/env bash
# Starts or stops the services in the background, with logs and pids under .local/run.
#   services.sh start | stop | status | wiring
#
# Each start runs a service from its own copy of its build (.local/run/app/<service>), taken from dist/ when it
# starts: rebuilding dist/ (make build, make up) never changes the files of a running service, which reads
# them again when it restarts or loads a module late. A pid file is trusted only when it names a live process
# running that service; a dead, dying (SIGKILL pending) or zombie one is waited for and replaced.
# Overrides (tests): AGENTMETER_DIST (build folder), AGENTMETER_RUN (pids, logs, copies), AGENTMETER_SERVICES.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dist="${AGENTMETER_DIST:-$root/dist}"
run="${AGENTMETER_RUN:-$root/.local/run}"
mkdir -p "$run/app"
read -r -a SERVICES <<<"${AGENTMETER_SERVICES:-ingest query cost-cap alert alert-worker}"

# cost-cap fails closed: a tenant without caps of its own is held to these deployment defaults, and one
# without any daily cap is denied (docs/cost-cap.md "Fail closed"). Override any of them in the environment.
export COST_CAP_DEFAULT_DAILY_USD="${COST_CAP_DEFAULT_DAILY_USD:-50}"
export COST_CAP_DEFAULT_RUN_USD="${COST_CAP_DEFAULT_RUN_USD:-5}"
export COST_CAP_DEFAULT_RUN_TOKENS="${COST_CAP_DEFAULT_RUN_TOKENS:-2000000}"
export COST_CAP_REQUIRE_DAILY_CAP="${COST_CAP_REQUIRE_DAILY_CAP:-true}"

entry_of() { echo "$run/app/$1/services/$1/src/main.js"; }

# The state of a pid as the kernel sees it: gone, zombie, dying, or alive.
state_of() { # pid
  local pid="$1" stat
  [[ "$pid" =~ ^[0-9]+$ ]] && stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || { echo gone; return; }
  case "$(awk '{print $3}' <<<"${stat##*) }")" in Z | X | x) echo zombie; return ;; esac
  # SIGKILL (signal 9, bit 8) pending: the kernel is tearing the process down.
  local pending; pending="$(awk '/^(SigPnd|ShdPnd):/ {print $2}' "/proc/$pid/status" 2>/dev/null | tr '\n' ' ')"
  for mask in $pending; do (((16#$mask & 16#100) != 0)) && { echo dying; return; }; done
  echo alive
}

# Whether a pid runs that service (its command line names its main.js; empty while it exits).
runs_service() { # pid service
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF "/$2/services/$2/src/main.js"
}

# The pid of a running service: the pid file names a live process whose command line is that service.
pid_of() { # service
  local pid; pid="$(cat "$run/$1.pid" 2>/dev/null)" || return 1
  [[ "$(state_of "$pid")" == alive ]] && runs_service "$pid" "$1" || return 1
  echo "$pid"
}

# Before a (re)start: the process the pid file names, when it is ours and on its way out (SIGKILL pending,
# or already without a command line), is waited for until gone (a zombie holds no port: it counts as gone);
# a pid reused by another program is ignored. Then the service's port must be free.
wait_gone() { # service
  local pid port; pid="$(cat "$run/$1.pid" 2>/dev/null)" || pid=""
  for _ in $(seq 1 120); do
    case "$(state_of "$pid")" in gone | zombie) break ;; esac
    # (/proc files have no size: read the command line to see whether it is empty)
    [[ -n "$(tr -d '\0' <"/proc/$pid/cmdline" 2>/dev/null)" ]] && ! runs_service "$pid" "$1" && break
    sleep 0.25
  done
  port="$(port_of "$1")"
  for _ in $(seq 1 120); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null || return 0
    sleep 0.25
  done
  echo "[services] $1: port $port is still in use after 30 s" >&2; return 1
}

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

# Replaces the service's copy of its build with the one in dist/ (only while it is not running).
install_copy() { # service
  [[ -f "$dist/$1/services/$1/src/main.js" ]] || { echo "[services] $dist/$1 is missing: run make build" >&2; return 1; }
  rm -rf "$run/app/$1.new" "$run/app/$1.old"
  cp -a "$dist/$1" "$run/app/$1.new"
  # query serves the console's pages: its copy holds the console build too (CONSOLE_DIR below).
  if [[ "$1" == query && -f "$root/web/dist/index.html" ]]; then cp -a "$root/web/dist" "$run/app/$1.new/console"; fi
  [[ -e "$run/app/$1" ]] && mv "$run/app/$1" "$run/app/$1.old"
  mv "$run/app/$1.new" "$run/app/$1"
  rm -rf "$run/app/$1.old"
}

start() {
  for s in "${SERVICES[@]}"; do
    if pid_of "$s" >/dev/null; then echo "[services] $s already running (pid $(pid_of "$s"))"; continue; fi
    wait_gone "$s"
    rm -f "$run/$s.pid"
    install_copy "$s"
    CONSOLE_DIR="$run/app/$s/console" PORT="$(port_of "$s")" nohup node --enable-source-maps "$(entry_of "$s")" >>"$run/$s.log" 2>&1 &
    echo $! >"$run/$s.pid"
  done
  for s in "${SERVICES[@]}"; do wait_healthy "$s" "$(port_of "$s")"; echo "[services] $s ready on :$(port_of "$s")"; done
}

stop() {
  for s in "${SERVICES[@]}"; do
    local pid; pid="$(pid_of "$s")" || { wait_gone "$s"; rm -f "$run/$s.pid"; continue; }
    kill "$pid"
    for _ in $(seq 1 40); do [[ "$(state_of "$pid")" == alive ]] || break; sleep 0.25; done
    [[ "$(state_of "$pid")" == alive ]] && kill -9 "$pid"
    wait_gone "$s"
    rm -f "$run/$s.pid"; echo "[services] stopped $s"
  done
}

status() { for s in "${SERVICES[@]}"; do echo "$s: $(pid_of "$s" >/dev/null && echo "running (pid $(pid_of "$s"))" || echo stopped)"; done; }

"${1:-status}"
