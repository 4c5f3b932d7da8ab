#!/bin/sh
# The compose database's entry point. Once the server takes connections, provision.sql (exported from shared/
# by npm run topology:export) gives each process a role owning its schema and nothing else, with its password
# from the environment (compose reads them from .env, see .env.example), at every start; the healthcheck
# waits for it.
set -eu
ready=/tmp/sagaflow-roles-ready
rm -f "$ready"
(
  # Over TCP: during first-run initialisation the server listens on its socket only.
  until pg_isready -q -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"; do sleep 1; done
  PGPASSWORD="$POSTGRES_PASSWORD" psql -q -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -v ON_ERROR_STOP=1 \
    -v orchestrator_password="$ORCHESTRATOR_DB_PASSWORD" \
    -v order_password="$ORDER_DB_PASSWORD" \
    -v inventory_password="$INVENTORY_DB_PASSWORD" \
    -v payment_password="$PAYMENT_DB_PASSWORD" \
    -v notification_password="$NOTIFICATION_DB_PASSWORD" \
    -f /etc/sagaflow/provision.sql
  touch "$ready"
) &
exec docker-entrypoint.sh postgres
