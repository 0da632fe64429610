#!/usr/bin/env bash
# Builds and runs the benchmarks; each rewrites its own sections of docs/benchmarks.md.
#   bench/run.sh                            # all of them: ingest, admission, query, console (~35 min on 2 cores)
#   bench/run.sh ingest                     # one or more by name: ingest | admission | query | console
#   BENCH_WRITE_DOC=0 bench/run.sh ingest   # print only
# Knobs of each (BENCH_REPEAT, BENCH_SECONDS, BENCH_RUNS, ...) are documented at the top of bench/<name>.bench.ts.
# Assumes `make install` and `make infra` (PostgreSQL, Redis, Kafka), which `make bench` does first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -x .local/node/bin/node ]]; then export PATH="$PWD/.local/node/bin:$PATH"; fi

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/agentmeter}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"

# The service each benchmark measures (ingest's freshness runs read run metrics from the query service; the
# console is served by query).
declare -A SERVICE=([ingest]="ingest query" [admission]=cost-cap [query]=query [console]=query)

run() {
  local name=$1 services=${SERVICE[$1]:-} service
  if [[ -z $services ]]; then
    echo "unknown benchmark '$name' (ingest, admission, query, console)" >&2
    return 2
  fi
  # The service measured and the migrations the benchmark applies (compiled beside it) come from the same
  # source tree. The benchmark runs a private copy of the service (dist/bench-<name>/<service>), so a
  # `make build` during the run cannot pull it away; its own output directory keeps other builds out.
  local out=dist/bench-$name
  for service in $services; do npx nest build "$service"; done
  rm -rf "$out"
  mkdir -p "$out"
  # Only this benchmark and what it imports (bench/tsconfig.json would compile every bench/*.ts).
  cat >"$out/tsconfig.json" <<JSON
{
  "extends": "../../bench/tsconfig.json",
  "compilerOptions": { "rootDir": "../..", "outDir": "." },
  "include": [],
  "files": ["../../bench/$name.bench.ts"]
}
JSON
  npx tsc -p "$out/tsconfig.json"
  for service in $services; do cp -r "dist/$service" "$out/$service"; done
  # The console benchmark loads the built console (web/dist, typed from query's OpenAPI document) from its copy.
  if [[ $name == console ]]; then
    npm run --silent build:web
    cp -r web/dist "$out/web"
  fi
  # bench/ is outside the Nest builds, so the @agentmeter/* aliases are mapped at run time onto the
  # libraries tsc emitted beside the benchmark ($out/libs/<name>/src).
  TS_NODE_PROJECT=tsconfig.json TS_NODE_BASEURL="$out" \
    node --enable-source-maps -r tsconfig-paths/register "$out/bench/$name.bench.js"
}

if [[ $# -eq 0 ]]; then set -- ingest admission query console; fi
for name in "$@"; do
  echo "== bench/$name"
  run "$name"
done
