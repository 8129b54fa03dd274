#!/bin/sh
# The broker container's command: start RabbitMQ (through the image's entrypoint, which drops to the
# rabbitmq user), wait until it has loaded definitions.json, then set each user's password from the
# environment (.env). A user whose password is not given keeps none and cannot log in. Passwords never
# go into definitions.json; they are set again at every start, so changing one in .env and restarting
# the broker rotates it. The healthcheck passes only after this has run.
set -eu
rm -f /tmp/lanling-passwords-set
docker-entrypoint.sh rabbitmq-server &
server=$!
trap 'kill -TERM "$server" 2>/dev/null' TERM INT

ctl() { if command -v gosu >/dev/null 2>&1; then gosu rabbitmq rabbitmqctl "$@"; else rabbitmqctl "$@"; fi; }

until ctl -q await_startup --timeout 10 >/dev/null 2>&1; do
  kill -0 "$server" 2>/dev/null || exit 1
  sleep 1
done
set_password() {  # user, password (empty: leave the user without one)
  if [ -n "$2" ]; then ctl -q change_password "$1" "$2"; echo "set-passwords: $1"; fi
}
set_password lanling "${LANLING_BROKER_PASSWORD:?set LANLING_BROKER_PASSWORD}"
for service in intake routing mediation psych notify gateway; do
  var="LANLING_BROKER_PASSWORD_$(echo "$service" | tr a-z A-Z)"
  eval "value=\${$var:-}"
  [ -n "$value" ] || { echo "set-passwords: $var is not set" >&2; exit 1; }
  set_password "lanling-$service" "$value"
done
for channel in hotline petition opinion app grid; do  # outside systems: only those deployed
  var="LANLING_BROKER_PASSWORD_SOURCE_$(echo "$channel" | tr a-z A-Z)"
  eval "value=\${$var:-}"
  set_password "source-$channel" "$value"
done
touch /tmp/lanling-passwords-set
wait "$server"
