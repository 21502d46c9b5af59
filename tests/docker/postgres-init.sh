#!/bin/sh
# The official postgres image's first start, as much of it as compose.yaml uses: a cluster whose
# superuser is POSTGRES_USER with POSTGRES_PASSWORD, and the database POSTGRES_DB. Listens on
# loopback only (the test stack is on the host's network), on PGPORT.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  password=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$password"
  # UTF8, as the official image makes it (its LANG is en_US.utf8); C would give SQL_ASCII
  initdb --username="$POSTGRES_USER" --pwfile="$password" --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm "$password"
  echo "listen_addresses = '127.0.0.1'" >>"$PGDATA/postgresql.conf"
  pg_ctl --wait --options="-c listen_addresses=''" start >/dev/null
  createdb --username="$POSTGRES_USER" "$POSTGRES_DB"
  pg_ctl --wait stop >/dev/null
fi
exec "$@"
