"""R34: no RabbitMQ queue of OTV keeps an event longer than the retention period, also where nobody
consumes it any more (a consumer stopped for good, a queue left behind by a renamed consumer). The
operator policy of scripts/broker-policy.sh (which scripts/setup.sh runs, and compose's `broker-policy`
service) gives every queue of the prefix a message TTL of OTV_RETENTION_DAYS, and combines with the
queues' own policies: the test suite's `expires` policy for `otv.test.` queues keeps working.

Run under a prefix of this test's own (below `otv.test.`, so that the suite's policy applies too), with
its own policy name: nothing changes for anybody else's queues.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from shared.config import CommonSettings
from shared.consumer import Consumer
from tests.conftest import TEST_OVERRIDES, wait_for
from tests.deploy.test_manifests import compose

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "broker-policy.sh"
DAY_MS = 86_400_000


def rabbitmqctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60, check=False
    )


def run_script(prefix: str, days: str) -> subprocess.CompletedProcess[str]:
    # Above the priority of the machine's own `otv-retention` policy (setup.sh), which matches too.
    env = {
        **os.environ,
        "OTV_QUEUE_PREFIX": prefix,
        "OTV_RETENTION_DAYS": days,
        "RABBITMQ_POLICY_PRIORITY": "1",
    }
    return subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60, check=False, env=env
    )


# rabbitmqctl list_queues of RabbitMQ 3.10 cannot show a queue's operator policy and effective
# definition; the broker's own info of each queue can.
INFO = (
    "rabbit_json:encode([#{{name => N, policy => rabbit_data_coercion:to_binary(P),"
    " operator_policy => rabbit_data_coercion:to_binary(O), effective => maps:from_list(E)}}"
    " || [{{name, {{resource, _, queue, N}}}}, {{policy, P}}, {{operator_policy, O}},"
    ' {{effective_policy_definition, E}}] <- rabbit_amqqueue:info_all(<<"/">>,'
    " [name, policy, operator_policy, effective_policy_definition]),"
    ' binary:match(N, <<"{prefix}.">>) =:= {{0, {length}}}]).'
)


def queue_policies(prefix: str) -> dict[str, dict[str, Any]]:
    listed = rabbitmqctl("eval", INFO.format(prefix=prefix, length=len(prefix) + 1))
    assert listed.returncode == 0, listed.stderr
    # eval prints the binary as an Erlang term: <<"...">>
    text = listed.stdout.strip()
    assert text.startswith('<<"') and text.endswith('">>'), text
    return {q["name"]: q for q in json.loads(text[3:-3].encode().decode("unicode_escape"))}


@pytest.mark.req("R34")
async def test_every_queue_of_otv_keeps_an_event_at_most_the_retention_period(
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    if rabbitmqctl("list_operator_policies").returncode != 0:
        pytest.skip("rabbitmqctl cannot reach the broker here (no Erlang cookie)")
    prefix = f"otv.test.privacy{uuid.uuid4().hex[:10]}"
    policy = f"{prefix}-retention"
    settings = CommonSettings(**{**TEST_OVERRIDES, "queue_prefix": prefix})
    consumer = Consumer(
        "notifier.appointments", pool=None, connection=amqp, settings=settings, handlers={}, bindings=()
    )
    queues = (consumer.queue_name, consumer.retry_queue_name, consumer.dead_queue_name)
    channel = await amqp.channel()
    try:
        await consumer.declare(channel)
        first, again = run_script(prefix, "3"), run_script(prefix, "3")  # idempotent
        assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
        assert "at most 3 days" in again.stdout

        def applied() -> dict[str, dict[str, Any]] | None:
            found = queue_policies(prefix)
            done = set(found) == set(queues) and all(q["operator_policy"] == policy for q in found.values())
            return found if done else None

        found = await wait_for(applied, timeout=15, what="the retention policy on the consumer's queues")
        for name in queues:
            effective = found[name]["effective"]
            assert effective["message-ttl"] == 3 * DAY_MS, name
            # The suite's own policy still holds beside it (a second policy would have replaced it).
            assert found[name]["policy"] == "otv-test-expiry" and effective["expires"] == 1_800_000, name
        # A changed period takes effect when the script runs again.
        assert run_script(prefix, "28").returncode == 0

        def changed() -> bool:
            found = queue_policies(prefix)
            return all(q["effective"].get("message-ttl") == 28 * DAY_MS for q in found.values())

        await wait_for(changed, timeout=15, what="the new retention period on the queues")
        for wrong in ("0", "vier", "28d"):
            refused = run_script(prefix, wrong)
            assert refused.returncode == 2 and "OTV_RETENTION_DAYS" in refused.stderr
    finally:
        rabbitmqctl("clear_operator_policy", policy)
        for name in queues:
            await channel.queue_delete(name)
        await channel.close()


def test_compose_sets_the_policy_before_any_queue_with_the_services_retention_period() -> None:
    services = compose()["services"]
    policy = services["broker-policy"]
    assert policy["image"] == services["rabbitmq"]["image"]
    assert policy["entrypoint"] == ["bash", "/otv/broker-policy.sh"]
    assert "../scripts/broker-policy.sh:/otv/broker-policy.sh:ro" in policy["volumes"]
    assert policy["environment"]["OTV_RETENTION_DAYS"] == compose()["x-otv-env"]["OTV_RETENTION_DAYS"]
    assert policy["environment"]["OTV_QUEUE_PREFIX"] == compose()["x-otv-env"]["OTV_QUEUE_PREFIX"]
    assert services["setup"]["depends_on"]["broker-policy"]["condition"] == "service_completed_successfully"


async def test_an_event_older_than_the_policy_goes_from_the_work_queue_to_the_dead_letters(
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    """What the policy takes out of a work queue is not lost silently: it reaches the consumer's dead
    letters (which its service collects, staff see and erasure reaches). The same operator policy as the
    script's, with a TTL of half a second instead of days."""
    if rabbitmqctl("list_operator_policies").returncode != 0:
        pytest.skip("rabbitmqctl cannot reach the broker here (no Erlang cookie)")
    prefix = f"otv.test.privacy{uuid.uuid4().hex[:10]}"
    policy = f"{prefix}-retention"
    settings = CommonSettings(**{**TEST_OVERRIDES, "queue_prefix": prefix})
    consumer = Consumer(
        "notifier.appointments", pool=None, connection=amqp, settings=settings, handlers={}, bindings=()
    )
    # On the work queue alone here: with half a second on the `.dead` queue too, the event would leave
    # that as well before the test looks.
    pattern = "^" + consumer.queue_name.replace(".", "\\.") + "$"
    channel = await amqp.channel(publisher_confirms=True)
    try:
        await consumer.declare(channel)
        made = rabbitmqctl(
            "set_operator_policy",
            "--apply-to",
            "queues",
            "--priority",
            "1",
            policy,
            pattern,
            '{"message-ttl": 500}',
        )
        assert made.returncode == 0, made.stderr
        await wait_for(
            lambda: queue_policies(prefix)[consumer.queue_name]["operator_policy"] == policy,
            timeout=15,
            what="the policy on the work queue",
        )
        await channel.default_exchange.publish(
            aio_pika.Message(b'{"an": "event"}', message_id="old-event"), routing_key=consumer.queue_name
        )

        async def dead_lettered() -> aio_pika.abc.AbstractIncomingMessage | None:
            dead = await channel.declare_queue(consumer.dead_queue_name, passive=True)
            return await dead.get(no_ack=True, fail=False)

        async def poll() -> aio_pika.abc.AbstractIncomingMessage:
            for _ in range(60):
                message = await dead_lettered()
                if message is not None:
                    return message
                await asyncio.sleep(0.25)
            raise AssertionError("the expired event did not reach the dead letters")

        message = await poll()
        assert message.message_id == "old-event" and message.body == b'{"an": "event"}'
        work = await channel.declare_queue(consumer.queue_name, passive=True)
        assert work.declaration_result.message_count == 0
    finally:
        rabbitmqctl("clear_operator_policy", policy)
        for name in (consumer.queue_name, consumer.retry_queue_name, consumer.dead_queue_name):
            await channel.queue_delete(name)
        await channel.close()
