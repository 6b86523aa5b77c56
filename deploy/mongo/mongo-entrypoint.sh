#!/bin/sh
# Entry point of the compose service `mongo`: write the replica-set key file from
# MONGO_REPLICA_KEY (.env), then hand over to the image's own entry point, which creates
# the root user (MONGO_INITDB_ROOT_*) on the first start and runs mongod with auth.
set -eu
: "${MONGO_REPLICA_KEY:?set MONGO_REPLICA_KEY in .env}"
key=/data/configdb/replica.key
umask 077
printf '%s\n' "$MONGO_REPLICA_KEY" > "$key"
chmod 400 "$key"
chown mongodb:mongodb "$key" 2>/dev/null || chown 999:999 "$key"
exec docker-entrypoint.sh "$@"
