#!/usr/bin/env bash
# An upper bound for how long RabbitMQ keeps an OTV event (R34): the operator policy `<prefix>-retention`
# gives every queue whose name starts with OTV_QUEUE_PREFIX a message TTL of OTV_RETENTION_DAYS.
#
# Events carry whole appointments and wishes (names, addresses, the manage link's token). A queue whose
# consumer runs keeps them for seconds; this bounds the rest: a consumer stopped for good, a queue left
# behind by a renamed consumer or prefix, a dead-letter queue whose service is down. An event older than
# the retention period leaves a work queue for its dead letters (x-dead-letter-exchange; the service
# collects them into its dead_letters table, where staff see them and erasure reaches them) and leaves a
# retry queue for its work queue; in a `.dead` queue it is dropped. So nothing stays longer than twice
# the retention period, and nothing a running consumer would have taken is lost silently.
#
# An operator policy, not a policy: RabbitMQ applies only the highest-priority policy to a queue, but
# combines it with the operator policy (the lower message TTL wins). Any policy of the operator's own,
# and the test suite's `expires` policy for `otv.test.` queues, keep working beside it.
#
# Idempotent; run it again after a change of OTV_RETENTION_DAYS. Needs rabbitmqctl with the node's
# Erlang cookie (run it on a RabbitMQ node, as its user or root):
#   scripts/setup.sh runs it locally; deploy/compose.yaml in its `broker-policy` service; Kubernetes:
#   kubectl -n otv-data exec -i otv-rabbitmq-server-0 -- env OTV_RETENTION_DAYS=28 bash -s < scripts/broker-policy.sh
#
# Environment: OTV_QUEUE_PREFIX (default otv), OTV_RETENTION_DAYS (default 28), RABBITMQCTL_NODE (a node
# other than the local one, e.g. rabbit@rabbitmq), RABBITMQ_VHOST (default /), RABBITMQ_POLICY_PRIORITY
# (default 0; of two operator policies matching one queue the higher priority applies: e.g. a second
# installation whose prefix starts with another's, as the tests' `otv.test.` queues do).
set -euo pipefail

prefix=${OTV_QUEUE_PREFIX:-otv}
days=${OTV_RETENTION_DAYS:-28}
vhost=${RABBITMQ_VHOST:-/}
priority=${RABBITMQ_POLICY_PRIORITY:-0}
if ! [[ $days =~ ^[1-9][0-9]{0,3}$ ]]; then
    echo "broker-policy: OTV_RETENTION_DAYS must be a whole number of days from 1, not '$days'" >&2
    exit 2
fi
if ! [[ $prefix =~ ^[A-Za-z0-9._-]+$ ]]; then
    echo "broker-policy: OTV_QUEUE_PREFIX '$prefix' has characters a queue name of OTV never has" >&2
    exit 2
fi
if ! [[ $priority =~ ^[0-9]{1,3}$ ]]; then
    echo "broker-policy: RABBITMQ_POLICY_PRIORITY must be a whole number from 0, not '$priority'" >&2
    exit 2
fi
node=()
if [ -n "${RABBITMQCTL_NODE:-}" ]; then node=(--node "$RABBITMQCTL_NODE"); fi

# The prefix and a dot, literally (every other character of a prefix stands for itself in a regex).
pattern="^${prefix//./\\.}\\."
rabbitmqctl "${node[@]}" -q set_operator_policy -p "$vhost" --apply-to queues --priority "$priority" \
    "${prefix}-retention" "$pattern" "{\"message-ttl\": $((days * 86400000))}"
echo "broker-policy: queues ${prefix}.* keep a message at most ${days} days (operator policy ${prefix}-retention)"
