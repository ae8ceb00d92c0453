#!/usr/bin/env bash
# `make prod-local` / `make prod-local-stop`: the production topology on this one machine, against
# the local PostgreSQL (FLEET_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/ispsupport_fleet)
# with its own Redis servers per role. Logs, pids and state: var/fleet/ (FLEET_VAR_DIR).
#
#   deploy/prod-local.sh start    # nginx on FLEET_PORT (8080) → 2 gunicorn web processes
#                                 #   + 1 daphne for /ws/, a worker per queue, beat, Graph simulator
#   deploy/prod-local.sh status
#   deploy/prod-local.sh stop
#
# FLEET_WEB_PROCESSES, FLEET_WEB_WORKERS, FLEET_WS_PROCESSES size it; FLEET_REDIS_URL uses one
# existing Redis for every role instead of starting our own (then the eviction policies of
# deploy/redis/*.conf are not in force). The implementation is deploy/fleet.py.
set -euo pipefail
cd "$(dirname "$0")/.."

command="${1:-start}"
py=.venv/bin/python
[ -x "$py" ] || { echo "prod-local: no .venv yet: run 'make venv' first" >&2; exit 1; }

if [ "$command" = "start" ]; then
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || {
    echo "prod-local: nginx is needed as the balancer: apt-get install nginx-light" >&2; exit 1; }
  if [ -z "${FLEET_REDIS_URL:-}" ]; then
    command -v redis-server >/dev/null 2>&1 || {
      echo "prod-local: redis-server is needed (apt-get install redis-server), or set FLEET_REDIS_URL" >&2
      exit 1; }
  fi
  pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null || {
    echo "prod-local: PostgreSQL is not answering on 127.0.0.1:5432" >&2; exit 1; }
fi

exec "$py" -m deploy.fleet "$command" "${@:2}"
