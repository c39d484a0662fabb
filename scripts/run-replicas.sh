#!/usr/bin/env bash
# make run-replicas: what several replicas behind a load balancer look
# like, on this machine. Starts, on loopback:
#   Redis         127.0.0.1:6380 (append-only, fsync always, noeviction)
#   the emulator  http://127.0.0.1:8090 (cmd/xfake, token demo-token)
#   mediagw 1-3   REST http://127.0.0.1:8081-8083, gRPC 127.0.0.1:9081-9083,
#                 admin (/readyz, /metrics) http://127.0.0.1:9181-9183,
#                 all with --ledger redis://127.0.0.1:6380/0
# A replica that exits (try kill -9 on it) is started again 2 s later, as
# an orchestrator would. Ctrl-C stops everything. Files and logs go to
# $MEDIAGW_REPLICAS_DIR (default /tmp/mediagw-replicas); each run starts
# with an empty Redis (the emulator forgets its media too). docs/operations.md's
# "Running several replicas" has commands to try.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

state=${MEDIAGW_REPLICAS_DIR:-${TMPDIR:-/tmp}/mediagw-replicas}
redis_port=6380
if ! command -v redis-server >/dev/null; then
	echo "run-replicas needs redis-server: apt-get install redis-server (Debian, Ubuntu) or brew install redis (macOS)" >&2
	exit 1
fi
rm -rf "$state/redis" "$state"/replica-*.log
mkdir -p "$state/redis" bin
echo "building mediagw and xfake into ./bin"
go build -o bin/mediagw ./cmd/mediagw
go build -o bin/xfake ./cmd/xfake

declare -A pid
cleanup() {
	trap - EXIT INT TERM
	for p in "${pid[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	echo "stopped; logs are in $state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

up() { # up NAME URL: wait until URL answers 200
	for _ in $(seq 300); do
		if curl -fsS -o /dev/null "$2" 2>/dev/null; then return 0; fi
		if ! kill -0 "${pid[$1]}" 2>/dev/null; then break; fi
		sleep 0.1
	done
	echo "$1 did not come up; its log ($state/$1.log):" >&2
	tail -20 "$state/$1.log" >&2
	exit 1
}

redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$state/redis" --appendonly yes --appendfsync always \
	--save '' --maxmemory-policy noeviction --logfile "$state/redis.log" </dev/null >/dev/null 2>&1 &
pid[redis]=$!
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.05; done
redis-cli -p "$redis_port" ping >/dev/null || { echo "redis-server did not start; see $state/redis.log" >&2; exit 1; }

bin/xfake --addr 127.0.0.1:8090 --token demo-token </dev/null >"$state/xfake.log" 2>&1 &
pid[xfake]=$!
up xfake http://127.0.0.1:8090/_xfake/stats

start_replica() { # start_replica N
	MEDIAGW_LEDGER="redis://127.0.0.1:$redis_port/0" MEDIAGW_X_TOKEN=demo-token \
		bin/mediagw --grpc-addr "127.0.0.1:908$1" --http-addr "127.0.0.1:808$1" --admin-addr "127.0.0.1:918$1" \
		--x-api-url http://127.0.0.1:8090 --log-format text </dev/null >>"$state/replica-$1.log" 2>&1 &
	pid[replica-$1]=$!
	echo "${pid[replica-$1]}" >"$state/replica-$1.pid"
}
for i in 1 2 3; do start_replica "$i"; done
for i in 1 2 3; do up "replica-$i" "http://127.0.0.1:918$i/readyz"; done

cat <<EOT

mediagw replicas on one Redis (127.0.0.1:$redis_port) and one X emulator (http://127.0.0.1:8090):
  replica 1  REST http://127.0.0.1:8081  gRPC 127.0.0.1:9081  admin http://127.0.0.1:9181  pid ${pid[replica-1]}
  replica 2  REST http://127.0.0.1:8082  gRPC 127.0.0.1:9082  admin http://127.0.0.1:9182  pid ${pid[replica-2]}
  replica 3  REST http://127.0.0.1:8083  gRPC 127.0.0.1:9083  admin http://127.0.0.1:9183  pid ${pid[replica-3]}
Readiness: curl http://127.0.0.1:9181/readyz   Logs: $state/replica-N.log
Kill one (kill -9 \$(cat $state/replica-1.pid)): it is started again 2 s later.
docs/operations.md's "Running several replicas" has a resume across replicas to try. Ctrl-C stops all.
EOT

while sleep 1; do
	for i in 1 2 3; do
		if ! kill -0 "${pid[replica-$i]}" 2>/dev/null; then
			wait "${pid[replica-$i]}" 2>/dev/null || true
			echo "replica $i exited; starting it again in 2 s"
			sleep 2
			start_replica "$i"
		fi
	done
	kill -0 "${pid[redis]}" 2>/dev/null || { echo "redis-server exited; see $state/redis.log" >&2; exit 1; }
done
