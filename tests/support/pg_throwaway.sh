# Sourced by deploy/test.sh: starts a throwaway PostgreSQL 15 cluster on a free
# loopback port in a temp folder and stops it on exit. Exports
# BRIDGE_TEST_PG_DSN (a database `labbridge_test`), BRIDGE_TEST_PG_DATA and
# BRIDGE_TEST_PG_CTL so crash tests can `pg_ctl stop -m immediate` and restart it.

pg_bin=/usr/lib/postgresql/15/bin

pg_as_owner() {
  # initdb refuses to run as root, so root runs the cluster as `postgres`.
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_free_port() {
  # Below the kernel's ephemeral range, which the tests' own servers (bound to
  # port 0) and every outgoing connection draw from: a port picked there can
  # be taken between this probe and PostgreSQL's bind.
  local low=32768 port
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  (( low > 11000 )) || low=32768
  for _ in $(seq 1 50); do
    port=$((10000 + RANDOM % (low - 10000)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

pg_start() {
  BRIDGE_TEST_PG_DIR=$(mktemp -d /tmp/lab-bridge-pg-XXXXXX)
  chmod 755 "$BRIDGE_TEST_PG_DIR"
  if [[ $(id -u) -eq 0 ]]; then chown postgres:postgres "$BRIDGE_TEST_PG_DIR"; fi
  export BRIDGE_TEST_PG_DATA="$BRIDGE_TEST_PG_DIR/data"
  pg_as_owner "$pg_bin/initdb" -D "$BRIDGE_TEST_PG_DATA" -U bridge --auth=trust -E UTF8 \
    --locale=C.UTF-8 >"$BRIDGE_TEST_PG_DIR/initdb.log" 2>&1
  local port attempt started=""
  # The options live in postgresql.auto.conf so a test can restart the cluster
  # with a plain `pg_ctl start` after `pg_ctl stop -m immediate`. A port taken
  # after the probe fails the start: try another (the last `port` line wins).
  for attempt in 1 2 3 4 5; do
    port=$(pg_free_port) || continue
    pg_as_owner tee -a "$BRIDGE_TEST_PG_DATA/postgresql.auto.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$BRIDGE_TEST_PG_DIR'
max_connections = 200
fsync = on
synchronous_commit = on
CONF
    if pg_as_owner "$pg_bin/pg_ctl" -D "$BRIDGE_TEST_PG_DATA" -l "$BRIDGE_TEST_PG_DIR/server.log" \
         -w start >/dev/null; then
      started=yes
      break
    fi
    echo "test PostgreSQL: start on port $port failed (attempt $attempt)" >&2
  done
  if [[ -z $started ]]; then
    echo "test PostgreSQL: could not start; see $BRIDGE_TEST_PG_DIR/server.log" >&2
    return 1
  fi
  export BRIDGE_TEST_PG_PORT=$port
  "$pg_bin/psql" -q "postgresql://bridge@127.0.0.1:$port/postgres" \
    -c "CREATE DATABASE labbridge_test" >/dev/null || return 1
  export BRIDGE_TEST_PG_DSN="postgresql://bridge@127.0.0.1:$port/labbridge_test"
  # Tests that crash the server call this with `stop -m immediate` / `start`.
  if [[ $(id -u) -eq 0 ]]; then
    export BRIDGE_TEST_PG_CTL="runuser -u postgres -- $pg_bin/pg_ctl -D $BRIDGE_TEST_PG_DATA -l $BRIDGE_TEST_PG_DIR/server.log -w"
  else
    export BRIDGE_TEST_PG_CTL="$pg_bin/pg_ctl -D $BRIDGE_TEST_PG_DATA -l $BRIDGE_TEST_PG_DIR/server.log -w"
  fi
  echo "test PostgreSQL: $BRIDGE_TEST_PG_DSN"
}

pg_stop() {
  if [[ -n "${BRIDGE_TEST_PG_DATA:-}" && -d "$BRIDGE_TEST_PG_DATA" ]]; then
    pg_as_owner "$pg_bin/pg_ctl" -D "$BRIDGE_TEST_PG_DATA" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$BRIDGE_TEST_PG_DIR"
  fi
}
