#!/usr/bin/env bash
# Builds and runs the admission latency benchmark; results go to the "Admission latency" section of
# docs/benchmarks.md. Assumes `make install` and `make infra` (PostgreSQL, Redis, Kafka) were done.
#   bench/admission.sh                     # 3 rounds of 10 s per cell, rewrites the section
#   BENCH_WRITE_DOC=0 bench/admission.sh   # print only
# Other knobs (BENCH_SECONDS, BENCH_REPEAT): bench/admission.bench.ts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -x .local/node/bin/node ]]; then export PATH="$PWD/.local/node/bin:$PATH"; fi

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/agentmeter}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"

# The service measured and the migrations the benchmark applies come from the same source tree; the
# benchmark runs a private copy of the service, so a `make build` during the run cannot pull it away.
out=dist/bench-admission
npx nest build cost-cap
rm -rf "$out"
mkdir -p "$out"
cat > "$out/tsconfig.json" <<'JSON'
{
  "extends": "../../bench/tsconfig.json",
  "compilerOptions": { "rootDir": "../..", "outDir": "." },
  "include": [],
  "files": ["../../bench/admission.bench.ts"]
}
JSON
npx tsc -p "$out/tsconfig.json"
cp -r dist/cost-cap "$out/cost-cap"
TS_NODE_PROJECT=tsconfig.json TS_NODE_BASEURL="$out" \
  exec node --enable-source-maps -r tsconfig-paths/register "$out/bench/admission.bench.js" "$@"
