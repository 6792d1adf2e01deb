#!/usr/bin/env bash
# Installs what the test suite needs and runs it: the README's set-up command 2,
# and what .ci/run calls after building its fresh virtualenv.
#
#   tests/run.sh                        the whole suite
#   tests/run.sh tests/unit -x          any arguments go to pytest
#
# Safe to run again: it installs only what is missing and says what it installs.
# - System packages (Debian/Ubuntu, apt-get): the suite drives a real Chromium,
#   Prometheus and promtool, nginx, OpenStack Swift with memcached, PostgreSQL,
#   Redis and curl, and fails rather than skips without them. As root they are
#   installed; otherwise the exact `sudo apt-get install` line is printed and
#   nothing else happens.
# - Python: the package with its test extras, into .venv (created if absent).
# - Servers: PostgreSQL and Redis on loopback are started if they do not answer.
#   ECHOFS_TEST_POSTGRES_URL / ECHOFS_TEST_REDIS_URL, when set, name servers to
#   use instead, and are used as they are. When ECHOFS_TEST_POSTGRES_URL is not
#   set, the run gets a throwaway database on the local server, dropped again
#   however the run ends.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'tests/run.sh: %s\n' "$*"; }

as_root=false
[ "$(id -u)" -eq 0 ] && as_root=true

# -- system packages -----------------------------------------------------------------
# Each is checked by the program the tests call, so a machine that has them
# from elsewhere (another package, a manual install) is left alone.
missing=()
# curl drives the README's walk-through in the end-to-end tests.
command -v curl >/dev/null 2>&1 || missing+=(curl)
# A real Prometheus scrapes a process cluster, and promtool checks the shipped
# config; on Debian both binaries come from the one `prometheus` package.
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  missing+=(prometheus)
fi
# The web UI's browser tests drive Debian's Chromium through Playwright
# (Playwright's own browser download is never used).
[ -x /usr/bin/chromium ] || missing+=(chromium)
# The throughput benchmark's quick profile measures EchoFS beside nginx.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  missing+=(nginx-light)
fi
# ... and beside OpenStack Swift, built all-in-one from Debian's packages: the
# ring builder (package swift), one server of each role, and memcached, which
# Swift's tempauth keeps its tokens in.
for pair in swift-ring-builder:swift swift-proxy-server:swift-proxy \
    swift-object-server:swift-object swift-container-server:swift-container \
    swift-account-server:swift-account memcached:memcached; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
# Only a local PostgreSQL needs the server package; a given URL is used as is.
local_postgres=false
if [ -z "${ECHOFS_TEST_POSTGRES_URL:-}" ]; then
  local_postgres=true
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! command -v psql >/dev/null 2>&1; then
    missing+=(postgresql)
  fi
fi
# The S3 endpoint's tests drive the real clients: rclone and s3cmd from Debian
# (aws-cli and boto3 come from PyPI with the test extras).
command -v rclone >/dev/null 2>&1 || missing+=(rclone)
command -v s3cmd >/dev/null 2>&1 || missing+=(s3cmd)
# redis-server is needed even with ECHOFS_TEST_REDIS_URL: some tests start and
# stop a private Redis of their own.
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)

installed_postgres=false
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "missing system packages (Debian names): ${missing[*]}"
    say "this machine has no apt-get: install their equivalents, then run this again"
    exit 1
  fi
  if ! $as_root; then
    say "missing system packages: ${missing[*]}"
    say "install them, then run this again:"
    printf '\n  sudo apt-get update && sudo apt-get install -y --no-install-recommends %s\n\n' \
      "${missing[*]}"
    exit 1
  fi
  say "installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  case " ${missing[*]} " in *" postgresql "*) installed_postgres=true ;; esac
else
  say "system packages: all present"
fi

# -- Python --------------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
fi
say "installing the test extras into .venv (pip install -e '.[test]')"
.venv/bin/python -m pip install --progress-bar off -e '.[test]' \
  | { grep -v '^Requirement already satisfied' || true; }

# -- PostgreSQL and Redis ------------------------------------------------------------
if $local_postgres; then
  if $installed_postgres; then
    # A fresh install asks for a password on TCP; the tests connect as postgres
    # from loopback. Only a cluster this script installed is changed.
    for hba in /etc/postgresql/*/main/pg_hba.conf; do
      grep -qx 'host all postgres 127.0.0.1/32 trust' "$hba" \
        || sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
    done
    for version in $(ls /etc/postgresql); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main reload 2>/dev/null || true
    done
  fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    if ! $as_root; then
      say "PostgreSQL does not answer on 127.0.0.1:5432; start it, then run this again:"
      printf '\n  sudo pg_ctlcluster %s main start\n\n' "$(ls /etc/postgresql | tail -n 1)"
      exit 1
    fi
    say "starting PostgreSQL"
    for version in $(ls /etc/postgresql); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
  fi
fi
if [ -z "${ECHOFS_TEST_REDIS_URL:-}" ] && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1
then
  say "starting Redis on 127.0.0.1:6379 (no persistence)"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi
# Both take a moment to accept connections after starting.
for _ in $(seq 100); do
  { ! $local_postgres || pg_isready -q -h 127.0.0.1 -p 5432; } \
    && { [ -n "${ECHOFS_TEST_REDIS_URL:-}" ] || redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; } \
    && break
  sleep 0.2
done
if $local_postgres; then
  pg_isready -h 127.0.0.1 -p 5432
  # A throwaway database for this run (the tests make their own beside it and
  # drop them), dropped again however the run ends.
  run_db="echofs_run_$(date +%s)_$$"
  psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE \"$run_db\""
  trap 'psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$run_db\" WITH (FORCE)" || true' EXIT
  export ECHOFS_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:5432/$run_db"
fi
if [ -z "${ECHOFS_TEST_REDIS_URL:-}" ]; then
  redis-cli -h 127.0.0.1 -p 6379 ping
  export ECHOFS_TEST_REDIS_URL="redis://127.0.0.1:6379/0"
fi

# -- the suite -----------------------------------------------------------------------
say "running: python -m pytest $*"
# Not exec: the EXIT trap drops the throwaway database after pytest returns.
.venv/bin/python -m pytest "$@"
