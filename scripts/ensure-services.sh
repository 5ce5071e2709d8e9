#!/usr/bin/env bash
# Start PostgreSQL and Redis if they are down (the commands this machine kind documents).
set -euo pipefail

if ! pg_isready -q -h localhost -p 5432; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 50); do pg_isready -q -h localhost -p 5432 && break; sleep 0.2; done
fi
pg_isready -q -h localhost -p 5432 || { echo "PostgreSQL is not answering on localhost:5432" >&2; exit 1; }

if ! redis-cli -h localhost -p 6379 ping >/dev/null 2>&1; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 50); do redis-cli -h localhost -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
fi
redis-cli -h localhost -p 6379 ping >/dev/null || { echo "Redis is not answering on localhost:6379" >&2; exit 1; }
