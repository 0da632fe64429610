#!/usr/bin/env bash
# Builds and runs the ingest benchmark; results go to docs/benchmarks.md.
# Assumes `make install` and `make infra` (PostgreSQL, Kafka) were done; builds dist/ingest and dist/bench-ingest.
#   bench/run.sh                       # 3 repetitions + latency, rewrites the "Ingest throughput" and "Ingest latency" sections
#   BENCH_WRITE_DOC=0 bench/run.sh     # print only
# Other knobs (BENCH_REPEAT, BENCH_RUNS_PER_PROJECT, BENCH_LATENCY_SECONDS, BENCH_LATENCY_RATE, BENCH_INGEST_OTEL,
# BENCH_PROFILE): bench/ingest.bench.ts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -x .local/node/bin/node ]]; then export PATH="$PWD/.local/node/bin:$PATH"; fi

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/agentmeter}"
export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"

# The ingest service is rebuilt here too, so that the service measured and the migrations the
# benchmark applies (compiled beside it) come from the same source tree. The benchmark runs a private
# copy of it (dist/bench-ingest/ingest), so a `make build` during the run cannot pull it away; its own
# output directory keeps other benchmarks' builds (dist/bench) out of the way too.
out=dist/bench-ingest
npx nest build ingest
rm -rf "$out"
mkdir -p "$out"
# Only this benchmark and what it imports (bench/tsconfig.json would compile every bench/*.ts).
cat > "$out/tsconfig.json" <<'JSON'
{
  "extends": "../../bench/tsconfig.json",
  "compilerOptions": { "rootDir": "../..", "outDir": "." },
  "include": [],
  "files": ["../../bench/ingest.bench.ts"]
}
JSON
npx tsc -p "$out/tsconfig.json"
cp -r dist/ingest "$out/ingest"
# bench/ is outside the Nest builds, so the @agentmeter/* aliases are mapped at run time onto the
# libraries tsc emitted beside the benchmark ($out/libs/<name>/src).
TS_NODE_PROJECT=tsconfig.json TS_NODE_BASEURL="$out" \
  exec node --enable-source-maps -r tsconfig-paths/register "$out/bench/ingest.bench.js" "$@"
