#!/bin/sh
# Entry point of the `cluster` profile's extra RabbitMQ nodes: take node 1's Erlang cookie
# (its data volume is mounted read-only at /node1) so the nodes trust each other, then
# start as the image does. Peer discovery (rabbitmq-cluster.conf) joins rabbit@rabbitmq.
set -eu
cookie=/var/lib/rabbitmq/.erlang.cookie
if ! cmp -s /node1/.erlang.cookie "$cookie" 2>/dev/null; then
  rm -f "$cookie"
  cp /node1/.erlang.cookie "$cookie"
  chown rabbitmq:rabbitmq "$cookie"
  chmod 400 "$cookie"
fi
exec docker-entrypoint.sh rabbitmq-server
