#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it.
#   pass 1: SQLite, in-memory channel layer, local-memory cache (the embedded default)
#   pass 2: this machine's PostgreSQL and Redis (the production paths)
# It installs or starts what the tests need: Chromium, and Redis/PostgreSQL if they are
# not already running.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export PYTHONUNBUFFERED=1

if [ ! -x /usr/bin/chromium ]; then
  echo "== installing Chromium (Debian package) for the browser tests"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi

# Redis and PostgreSQL: use the machine's if they answer, else start them.
REDIS_HOST_PORT=${TEST_REDIS:-127.0.0.1:6379}
if ! $PY - "$REDIS_HOST_PORT" <<'PYEOF'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
socket.create_connection((host, int(port)), timeout=2).close()
PYEOF
then
  echo "== no Redis on $REDIS_HOST_PORT: starting a throwaway one"
  port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --logfile /dev/null
  REDIS_HOST_PORT=127.0.0.1:$port
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "== PostgreSQL is not answering: starting the machine's cluster"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi

echo "== lint and types"
.venv/bin/ruff check .
.venv/bin/mypy messenger keys relay files courier

data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT

echo "== pass 1: SQLite and in-memory layers"
MESSENGER_DATA_DIR=$data/sqlite $PY -m pytest -m "not postgres and not redis and not browser" "$@"

# Playwright's synchronous API keeps an event loop running in the main thread while a
# browser is open, which the asyncio tests cannot share: the browser tests get a process
# of their own.
echo "== pass 1b: browser tests (Chromium)"
MESSENGER_DATA_DIR=$data/browser $PY -m pytest -m "browser" "$@"

echo "== pass 2: PostgreSQL and Redis"
MESSENGER_DATA_DIR=$data/pg \
DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/courier} \
REDIS_URL=redis://$REDIS_HOST_PORT/14 \
  $PY -m pytest -m "not sqlite_only and not browser" "$@"
