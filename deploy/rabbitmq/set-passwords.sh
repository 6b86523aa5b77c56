#!/bin/sh
# One-shot (compose service `broker-users`): gives every user of definitions.json its
# password from .env. definitions.json carries none, so no secret is committed. Safe to
# re-run; compose runs it on every `up`, before any guahao process connects.
# Hospital users are provisioned separately: python -m shared.broker_admin add-hospital.
set -eu
node="${RABBITMQ_NODE:-rabbit@rabbitmq}"
rabbitmqctl -q -n "$node" await_startup
for kind in operator gateway auth catalog booking notify payment; do
  var="RABBITMQ_$(echo "$kind" | tr 'a-z' 'A-Z')_PASSWORD"
  eval "password=\${$var:-}"
  if [ -z "$password" ]; then
    echo "broker-users: $var is empty" >&2
    exit 1
  fi
  rabbitmqctl -q -n "$node" change_password "$kind" "$password"
done
echo "broker-users: passwords set"
