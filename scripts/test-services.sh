#!/usr/bin/env bash
# Make sure the services the test suite talks to are up. The Kafka-protocol broker is started
# by the suite itself (tests/fixtures/kafka.py); PostgreSQL is found here or by the fixture.
set -u
pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
if [ -n "${HUB_TEST_PG_URL:-}" ]; then
  echo "test services: PostgreSQL from HUB_TEST_PG_URL"
elif pg_up; then
  echo "test services: PostgreSQL answers on 127.0.0.1:5432"
elif command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  ver=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "test services: starting the local PostgreSQL $ver cluster"
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  pg_up && echo "test services: PostgreSQL is up" || echo "test services: PostgreSQL did not start; the suite will try a throwaway cluster"
else
  echo "test services: no PostgreSQL here; the suite will try a throwaway cluster (initdb) or say loudly that it skipped"
fi
exit 0
