#!/bin/sh
# The one entrypoint of every Courier process, in a container and outside one.
#
#   entrypoint.sh web [--port 8000] [--proxy-headers]   an ASGI node (daphne)
#   entrypoint.sh worker [--concurrency 2]              the Celery worker pool
#   entrypoint.sh beat                                  the one Celery beat
#   entrypoint.sh migrate                               apply database migrations, then exit
#   entrypoint.sh manage <command> [args...]            an operator's management command
#                                                       (stats, purge, rotate_keys, ...)
#
# The roles are started by `manage.py run_role`, which takes its command lines from
# messenger/processes.py: the container, `manage.py serve` and the tests run the same ones.
# Paths are relative to this script, and `python` is the first one on PATH unless PYTHON
# names another, so the scale-out test runs this very script on the host.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
PYTHON=${PYTHON:-python}

# PostgreSQL's password arrives as a file (a docker secret shared with the database
# container); libpq reads PGPASSWORD, so DATABASE_URL itself carries no secret.
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ] && [ -z "${PGPASSWORD:-}" ]; then
  PGPASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
  export PGPASSWORD
fi

usage() {
  echo "usage: $0 {web|worker|beat|migrate} [options] | manage <command> [args...]" >&2
  exit 64
}

[ $# -ge 1 ] || usage
role=$1
shift
cd "$root"
case "$role" in
  web | worker | beat | migrate)
    exec "$PYTHON" manage.py run_role "$role" "$@"
    ;;
  manage)
    [ $# -ge 1 ] || usage
    exec "$PYTHON" manage.py "$@"
    ;;
  *)
    usage
    ;;
esac
