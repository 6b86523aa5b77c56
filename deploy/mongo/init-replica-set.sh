#!/bin/sh
# Entry point of the one-shot compose service `mongo-init` (image mongo:8, which has
# mongosh): wait until mongod accepts connections, then run init-replica-set.js.
# Idempotent: running it against an initiated replica set only waits for the PRIMARY
# (and resets the application user's password to the one in .env).
set -eu
# ping is answered without logging in; the script itself runs as the root user
probe="mongodb://${MONGO_HOST:-mongo:27017}/?directConnection=true&serverSelectionTimeoutMS=2000"
uri="mongodb://${MONGO_HOST:-mongo:27017}/admin?directConnection=true&serverSelectionTimeoutMS=2000"
auth="--username ${MONGO_ROOT_USER:-root} --password ${MONGO_ROOT_PASSWORD:?set MONGO_ROOT_PASSWORD} --authenticationDatabase admin"
script="$(dirname "$0")/init-replica-set.js"
i=0
until mongosh --quiet --norc "$probe" --eval 'db.adminCommand({ ping: 1 }).ok' >/dev/null 2>&1; do
  i=$((i + 1))
  if [ "$i" -ge 60 ]; then
    echo "mongo-init: mongod at ${MONGO_HOST:-mongo:27017} did not answer within 60 s" >&2
    exit 1
  fi
  sleep 1
done
# shellcheck disable=SC2086  # $auth is several words on purpose
exec mongosh --quiet --norc $auth "$uri" "$script"
