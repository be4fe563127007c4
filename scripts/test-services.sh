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
# The console's e2e tests drive a real headless Chromium (Debian's, never a downloaded build) and
# need a CJK font, or Chinese renders as empty boxes in their screenshots. Install what is missing
# when this machine lets us (root with apt-get); otherwise those tests skip and say why.
chromium_bin="${HUB_CHROMIUM:-/usr/bin/chromium}"
has_cjk_font() { command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh family 2>/dev/null)" ]; }
missing=()
[ -x "$chromium_bin" ] || missing+=(chromium)
has_cjk_font || missing+=(fonts-wqy-microhei)
if [ ${#missing[@]} -eq 0 ]; then
  echo "test services: Chromium ($chromium_bin) and a CJK font are present"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test services: installing ${missing[*]} with apt-get for the console browser tests"
  export DEBIAN_FRONTEND=noninteractive
  # Package lists may be absent or stale on a fresh machine: refresh them only if the first try fails.
  apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; } \
    || echo "test services: apt-get could not install ${missing[*]}; the console browser tests will skip (HUB_REQUIRE_BROWSER=1 makes them fail)"
else
  echo "test services: ${missing[*]} missing and not installable here (needs root and apt-get); the console browser tests will skip"
fi
exit 0
