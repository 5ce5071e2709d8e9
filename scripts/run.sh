#!/usr/bin/env bash
# `make run`: migrate, seed the demo, point localstripe's webhook at this instance, start web
# (gunicorn, as in production), worker, beat and localstripe under honcho, and print
# "Recur is ready" only once each of them answers. honcho keeps the foreground (exec), so
# Ctrl-C stops them all as before.
#
# One variable per thing moves a second instance (README, "A second instance"); config/settings.py
# derives the same values from the same variables, so every process and command agrees.
set -euo pipefail
cd "$(dirname "$0")/.."

export WEB_PORT="${WEB_PORT:-8000}" STRIPE_PORT="${STRIPE_PORT:-8420}"
export DB_NAME="${DB_NAME:-recur}" REDIS_DB="${REDIS_DB:-0}"
PY=.venv/bin/python
RUN=".run/$DB_NAME"

refuse() {
  echo "make run: $*" >&2
  exit 1
}
answers_tcp() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Nothing may silently talk to another instance: a taken port, a DATABASE_URL or REDIS_URL
# naming something else, or a Redis database another instance uses (its worker would run
# our tasks against its own database) stop here with the variable to change.
answers_tcp "$WEB_PORT" && refuse "port $WEB_PORT is taken (another Recur?); pass WEB_PORT=<free port>"
answers_tcp "$STRIPE_PORT" && refuse "port $STRIPE_PORT is taken (another localstripe?); pass STRIPE_PORT=<free port>"
if [ -n "${DATABASE_URL:-}" ] && [ "${DATABASE_URL##*/}" != "$DB_NAME" ]; then
  refuse "DATABASE_URL ($DATABASE_URL) names another database than DB_NAME=$DB_NAME; unset it or pass DB_NAME"
fi
if [ -n "${REDIS_URL:-}${CELERY_BROKER_URL:-}${CACHE_URL:-}" ]; then
  refuse "REDIS_URL, CELERY_BROKER_URL or CACHE_URL is set; make run derives them from REDIS_DB: unset them"
fi
owner="$(redis-cli -n "$REDIS_DB" GET recur:instance)"
if [ -n "$owner" ] && [ "$owner" != "$DB_NAME" ]; then
  refuse "Redis database $REDIS_DB is used by the instance with DB_NAME=$owner; pass REDIS_DB=<another number 0-15>" \
    "(if that instance is gone for good: redis-cli -n $REDIS_DB DEL recur:instance)"
fi
redis-cli -n "$REDIS_DB" SET recur:instance "$DB_NAME" >/dev/null

mkdir -p "$RUN"
# The localstripe store used to live in .run/ itself: the default instance keeps it.
if [ "$DB_NAME" = recur ] && [ -f .run/localstripe.pickle ] && [ ! -f "$RUN/localstripe.pickle" ]; then
  mv .run/localstripe.pickle "$RUN/localstripe.pickle"
fi
rm -f "$RUN/beat.pid"

$PY manage.py migrate --noinput
$PY manage.py bootstrap
banner="$($PY manage.py seed_demo)"
eval "$($PY manage.py setup_stripe_webhook --shell)"

# Polled once a second; gives up (and says which) after two minutes, or when honcho is gone.
main=$$
wait_for() {
  local what=$1
  shift
  for _ in $(seq 1 120); do
    kill -0 "$main" 2>/dev/null || exit 0
    "$@" >/dev/null 2>&1 && return 0
    sleep 1
  done
  echo "make run: the $what did not answer within two minutes; see its lines above." >&2
  exit 1
}
web_answers() { curl -sf -o /dev/null "http://127.0.0.1:$WEB_PORT/backoffice/login/"; }
stripe_answers() { curl -s -o /dev/null "http://127.0.0.1:$STRIPE_PORT/v1/customers"; }
worker_answers() { .venv/bin/celery -A config inspect ping --timeout 2 --destination "recur-$DB_NAME@$(hostname)"; }
beat_runs() { [ -s "$RUN/beat.pid" ] && kill -0 "$(cat "$RUN/beat.pid")"; }

announce_when_ready() {
  wait_for "web server (gunicorn on port $WEB_PORT)" web_answers
  wait_for "localstripe (port $STRIPE_PORT)" stripe_answers
  wait_for "Celery beat" beat_runs
  wait_for "Celery worker" worker_answers
  printf '\nRecur is ready.\n%s\n\n' "${banner#*$'\n'}"
}

echo "Starting web, worker, beat and localstripe (Ctrl-C stops them all)..."
(announce_when_ready &) # detached, so honcho (which replaces this shell) leaves no zombie
exec .venv/bin/honcho start -f Procfile
