#!/usr/bin/env bash
# Builds and runs the ingest throughput benchmark; results go to docs/benchmarks.md.
# Assumes `make install` and `make infra` (PostgreSQL, Kafka) were done; builds dist/ingest and dist/bench.
#   bench/run.sh                       # 3 repetitions, rewrites the "Ingest throughput" section
#   BENCH_WRITE_DOC=0 bench/run.sh     # print only
# Other knobs (BENCH_REPEAT, BENCH_RUNS_PER_PROJECT, BENCH_INGEST_OTEL, BENCH_PROFILE): bench/ingest.bench.ts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -x .local/node/bin/node ]]; then export PATH="$PWD/.local/node/bin:$PATH"; fi

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/agentmeter}"
export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"

# The ingest service is rebuilt here too, so that the service measured and the migrations the
# benchmark applies (compiled into dist/bench) come from the same source tree. The benchmark runs a
# private copy of it (dist/bench/ingest), so a `make build` during the run cannot pull it away.
npx nest build ingest
rm -rf dist/bench
npx tsc -p bench/tsconfig.json
cp -r dist/ingest dist/bench/ingest
# bench/ is outside the Nest builds, so the @agentmeter/* aliases are mapped at run time onto the
# libraries tsc emitted beside the benchmark (dist/bench/libs/<name>/src).
TS_NODE_PROJECT=tsconfig.json TS_NODE_BASEURL=dist/bench \
  exec node --enable-source-maps -r tsconfig-paths/register dist/bench/bench/ingest.bench.js "$@"
