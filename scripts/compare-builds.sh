#!/usr/bin/env bash
# Compares the server at an older revision with the working tree: both built,
# run alternately three times each on one PostgreSQL database (PGURL, default
# the local server's perfcompare database), driven by cmd/loadgen with a
# bare net/http server measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${1:?usage: scripts/compare-builds.sh <old revision> [scenarios]}
SCEN=${2:-bare,get,list,post}
rm -rf ${TMPDIR:-/tmp}/compare-old && git worktree add -f ${TMPDIR:-/tmp}/compare-old $OLD >/dev/null 2>&1 || true
(cd ${TMPDIR:-/tmp}/compare-old && go build -o ${TMPDIR:-/tmp}/compare-incidentd-old ./cmd/incidentd)
go build -o ${TMPDIR:-/tmp}/compare-incidentd-new ./cmd/incidentd
go build -o ${TMPDIR:-/tmp}/compare-loadgen ./cmd/loadgen
[ -n "${PGURL:-}" ] || psql -h 127.0.0.1 -U postgres -d test -q -c "DROP DATABASE IF EXISTS perfcompare WITH (FORCE)" -c "CREATE DATABASE perfcompare"
DB="${PGURL:-postgres://postgres@127.0.0.1:5432/perfcompare?sslmode=disable}"
DATABASE_URL=$DB ${TMPDIR:-/tmp}/compare-incidentd-new migrate >/dev/null
KEY=$(DATABASE_URL=$DB ${TMPDIR:-/tmp}/compare-incidentd-new apikey create --tenant load --name load --scopes incidents:read,incidents:write)
run() { # $1 binary, $2 label
  INCIDENTD_ADDR=127.0.0.1:18111 DATABASE_URL=$DB INCIDENTD_LOG_LEVEL=warn INCIDENTD_RATE_LIMIT=100000000-M $1 serve >${TMPDIR:-/tmp}/compare-srv-$2.log 2>&1 &
  local pid=$!
  for i in $(seq 1 50); do curl -sf 127.0.0.1:18111/readyz >/dev/null && break; sleep 0.2; done
  echo "== $2"
  ${TMPDIR:-/tmp}/compare-loadgen -url http://127.0.0.1:18111 -key $KEY -seed ${SEED:-20000} -conns 50 -duration 5s -warmup 1s -scenarios $SCEN 2>/dev/null
  kill $pid; wait $pid 2>/dev/null || true
}
for r in 1 2 3; do run ${TMPDIR:-/tmp}/compare-incidentd-old old$r; run ${TMPDIR:-/tmp}/compare-incidentd-new new$r; done
git worktree remove --force ${TMPDIR:-/tmp}/compare-old || true
