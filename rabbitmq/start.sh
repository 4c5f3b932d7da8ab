#!/bin/sh
# The compose broker's entry point. rabbitmq/definitions.json brings the users without usable passwords (an
# empty hash refuses every login), so once the node is up this gives each user its password from the
# environment (compose reads them from .env, see .env.example), at every start; the healthcheck waits for it.
set -eu
ready=/tmp/sagaflow-users-ready
rm -f "$ready"
# The cluster's shared secret: where the server and rabbitmqctl (HOME=/var/lib/rabbitmq in the image) read it.
cookie=/var/lib/rabbitmq/.erlang.cookie
printf '%s' "$ERLANG_COOKIE" > "$cookie"
chmod 600 "$cookie"
chown rabbitmq:rabbitmq "$cookie" 2>/dev/null || true
(
  until rabbitmqctl -q await_startup >/dev/null 2>&1; do sleep 1; done
  for user in admin orchestrator order inventory payment notification; do
    eval "password=\${$(echo "$user" | tr 'a-z' 'A-Z')_AMQP_PASSWORD}"
    rabbitmqctl -q change_password "$user" "$password" >/dev/null
  done
  touch "$ready"
) &
exec docker-entrypoint.sh rabbitmq-server
