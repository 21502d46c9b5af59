"""CommandRunner's execution lock: one command executed once, however many instances hold it."""

import asyncio
import time
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from voicetap_common.command_runner import CommandRunner, Executor, lock_key
from voicetap_common.consumer_metrics import PrometheusConsumerMetrics
from voicetap_sdk import codec
from voicetap_sdk.commands import COMMAND_MODELS, CallCommand, TranscriptionStop
from voicetap_sdk.consumer import ConsumerOptions, StreamConsumer
from voicetap_sdk.redis_client import RedisClient
from voicetap_sdk.streams import Producer
from voicetap_sdk.topics import COMMAND_RESULTS, TRANSCRIPTION_COMMANDS

GROUP = "executors"


class SlowExecutor:
    """Records every execution and takes ``seconds`` over each, like a slow Call Control request."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.executed: list[tuple[str, str, float]] = []

    def for_instance(self, name: str) -> Executor:
        async def execute(command: CallCommand) -> dict[str, Any] | None:
            self.executed.append((name, command.id, time.monotonic()))
            await asyncio.sleep(self.seconds)
            return {"executed_on": name}

        return execute


def instance(
    redis: RedisClient, executor: SlowExecutor, name: str, **runner_options: float
) -> StreamConsumer:
    """One service instance: its own runner and consumer, in the shared group, one entry per read."""
    producer = Producer(redis, 10_000)
    runner = CommandRunner(
        redis,
        producer,
        executor.for_instance(name),
        executed_by=name,
        actions=frozenset(COMMAND_MODELS),
        **runner_options,
    )
    options = ConsumerOptions(
        group=GROUP,
        topics=[TRANSCRIPTION_COMMANDS],
        consumer=name,
        batch_size=1,
        block_ms=50,
        read_ahead=False,
        retry_backoff_max_s=0.1,
    )
    return StreamConsumer(
        redis, producer, options, runner.handle, PrometheusConsumerMetrics(CollectorRegistry())
    )


async def publish(redis: RedisClient, command: CallCommand, deliveries: int) -> None:
    body = codec.dumps(command.model_dump(mode="json"))
    for n in range(deliveries):
        await Producer(redis, 10_000).publish(
            TRANSCRIPTION_COMMANDS, f"delivery-{n}", "command", body
        )


async def results(redis: RedisClient) -> list[dict]:  # type: ignore[type-arg]
    return [codec.loads(fields[b"event"]) for _, fields in await redis.xrange(COMMAND_RESULTS)]


async def pending(redis: RedisClient) -> int:
    return int((await redis.xpending(TRANSCRIPTION_COMMANDS, GROUP))["pending"])


@pytest.mark.parametrize(
    "wait_seconds", [10.0, 0.05], ids=["waits-for-the-result", "retries-later"]
)
async def test_two_instances_racing_on_two_deliveries_execute_once(
    redis: Redis, wait_seconds: float
) -> None:
    executor = SlowExecutor(0.5)
    command = TranscriptionStop(call_control_id="v3:race")
    await publish(redis, command, deliveries=2)
    a, b = (instance(redis, executor, name, wait_seconds=wait_seconds) for name in ("a", "b"))
    await a.ensure_groups()

    handled = await asyncio.gather(a.run_once(), b.run_once())

    assert handled == [1, 1]  # each instance held one delivery at the same moment
    assert [command_id for _, command_id, _ in executor.executed] == [command.id]
    assert await pending(redis) == 0  # both deliveries acknowledged
    [result] = await results(redis)
    assert result["ok"] is True and result["command_id"] == command.id
    assert result["allocated"] == {"executed_on": executor.executed[0][0]}
    assert not await redis.exists(lock_key(command.id))


async def test_a_holder_that_died_releases_the_lock_by_expiry(redis: Redis) -> None:
    command = TranscriptionStop(call_control_id="v3:orphan")
    await publish(redis, command, deliveries=1)
    # What a dead instance leaves behind: its lock, no result, and no release ever.
    await redis.set(lock_key(command.id), "dead-instance:token", px=400)
    executor = SlowExecutor(0.0)
    survivor = instance(redis, executor, "survivor", wait_seconds=0.05)
    await survivor.ensure_groups()
    started = time.monotonic()

    assert await survivor.run_once() == 1

    [(name, command_id, at)] = executor.executed
    assert (name, command_id) == ("survivor", command.id)
    assert at - started >= 0.35, "executed while the dead holder's lock was still alive"
    assert await pending(redis) == 0
    [result] = await results(redis)
    assert result["ok"] is True and result["executed_by"] == "survivor"


async def test_a_runner_restarted_under_its_name_takes_its_earlier_lives_lock_at_once(
    redis: Redis,
) -> None:
    """An instance restarted in place executes the command its killed life held, without waiting
    for the lock to expire; another instance's lock is still waited for."""
    command = TranscriptionStop(call_control_id="v3:restarted")
    await publish(redis, command, deliveries=1)
    await redis.set(lock_key(command.id), "ingest-w0:0123456789ab:token", px=60_000)
    executor = SlowExecutor(0.0)
    again = instance(redis, executor, "ingest-w0", wait_seconds=0.05)
    await again.ensure_groups()
    started = time.monotonic()
    assert await again.run_once() == 1
    [(name, command_id, at)] = executor.executed
    assert (name, command_id) == ("ingest-w0", command.id) and at - started < 1.0
    [result] = await results(redis)
    assert result["ok"] is True and not await redis.exists(lock_key(command.id))

    other = TranscriptionStop(call_control_id="v3:elsewhere")
    await publish(redis, other, deliveries=1)
    await redis.set(lock_key(other.id), "ingest-w0x:0123456789ab:token", px=800)
    started = time.monotonic()
    await again.run_once()  # a name that only starts like this one's: not an earlier life
    (_, command_id, at) = executor.executed[-1]
    assert command_id == other.id and at - started >= 0.7, "did not wait for the other's lock"


async def test_a_cancelled_execution_releases_the_lock_at_once(redis: Redis) -> None:
    command = TranscriptionStop(call_control_id="v3:cancelled")
    await publish(redis, command, deliveries=2)
    executor = SlowExecutor(5.0)
    first = instance(redis, executor, "first", lock_seconds=300)
    await first.ensure_groups()
    running = asyncio.create_task(first.run_once())
    while not executor.executed:
        await asyncio.sleep(0.01)
    running.cancel()  # e.g. the instance shuts down mid-request: no result was published
    with pytest.raises(asyncio.CancelledError):
        await running
    assert not await redis.exists(lock_key(command.id))

    executor.seconds = 0.0
    second = instance(redis, executor, "second", wait_seconds=0.05)
    assert await asyncio.wait_for(second.run_once(), 5) == 1

    assert [name for name, _, _ in executor.executed] == ["first", "second"]
    [result] = await results(redis)
    assert result["ok"] is True and result["executed_by"] == "second"
