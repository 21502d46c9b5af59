"""``voicetap simulate``: play simulated Telnyx calls against the stack and check what it made of them.

Serves the fake Telnyx Call Control API on ``--api-port`` for the whole run (local mode sends the
stack's commands there), plays ``--calls`` calls ``--concurrency`` at a time (signed webhooks to
the gateway, media and transcriptions as the stack asks), then checks what a user would: webhooks
accepted, events on their topics, recordings, transcripts. Services that do not answer their
``/readyz`` are not checked (the summary says so) unless they are required: named by ``--require``,
or installed here when the run started the stack (``--start-stack``) or is the demo, since such a
stack runs every installed service and one that never gets ready is broken, not absent.
``--demo`` plays one short call and prints where to look; ``voicetap up --demo`` runs it.

Exit codes: 0 every check passed, 1 a check failed, 2 the run could not be set up.
"""

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import httpx

from telnyx_simulator import checks
from telnyx_simulator.audio import CallAudio, Codec
from telnyx_simulator.fake_api import create_fake_api
from telnyx_simulator.player import CallPlayer, CallSpec
from telnyx_simulator.progress import Snapshot, show_progress
from telnyx_simulator.report import CallResult, Check, ServiceState, Summary
from telnyx_simulator.script import ScriptLine, load_script, looped_script
from telnyx_simulator.serve import serve
from telnyx_simulator.settings import SimulatorSettings
from telnyx_simulator.signing import WebhookSigner
from telnyx_simulator.stack import (
    DEV_KEYS_FILE,
    DevKeys,
    StartedStack,
    env_for_started_stack,
    installed_services,
    probe,
    read_dev_keys,
    wait_ready,
)
from telnyx_simulator.state import FakeTelnyxState
from telnyx_simulator.validation import TRANSCRIPTION_ENGINES
from telnyx_simulator.webhooks import DeliveryPolicy, WebhookSender
from voicetap_common.command_line import voicetap_command
from voicetap_common.logs import configure_logging
from voicetap_sdk import codec
from voicetap_sdk.redis_client import client_for

log = logging.getLogger("voicetap.simulator")

SAMPLE_AUDIO = "sample-call.wav"
SAMPLE_SCRIPT = "sample-call.txt"
OPTIONAL_SERVICES = ("ingest", "indexer", "console")
DEMO_TAIL = 0.5  # the demo call lasts this much longer than the sample, so every line is final
WEBHOOK_PATH = "/webhooks/telnyx"
SINCE_MARGIN_MS = (
    60_000  # topics are read back from this long before the run (clock skew with Redis)
)


class SetupError(Exception):
    """The run cannot start (no key, port taken, a file missing): exit code 2."""


@dataclass(frozen=True)
class Options:
    calls: int
    duration: float | None  # None: the audio's length (plus DEMO_TAIL in the demo)
    concurrency: int
    audio: Path | None  # None: the shipped sample
    script: Path | None  # None: the sample's script when the audio is the sample
    codec: Codec
    ring: float
    engine: str | None  # None: transcribe only when the stack asks
    redeliver_probability: float
    gateway_url: str
    ingest_url: str
    indexer_url: str
    console_url: str
    indexer_token: str | None
    api_port: int
    api_key: str | None
    signing_key: str | None
    data_dir: Path | None
    redis_url: str
    redis_cluster: bool
    topic_partitions: int  # the stack's TOPIC_PARTITIONS, read like the stack reads it
    start_stack: bool
    demo: bool
    require: frozenset[str]
    wait: float
    settle: float
    json: bool


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
        return value

    return parse


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def _services(text: str) -> frozenset[str]:
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    unknown = names - {"gateway", *OPTIONAL_SERVICES}
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown service {', '.join(sorted(unknown))} (choose from gateway, ingest, indexer, console)"
        )
    return names


def build_parser(settings: SimulatorSettings) -> argparse.ArgumentParser:
    local = "http://127.0.0.1"
    parser = argparse.ArgumentParser(
        prog="voicetap simulate",
        description="Play simulated Telnyx calls against the voicetap stack (or one it starts) "
        "and check the result the way a user would: webhooks accepted, events on topics, "
        "recordings, searchable transcripts. Exit code 1 when anything expected is missing.",
    )
    calls = parser.add_argument_group("calls")
    calls.add_argument(
        "--calls", type=_positive(int), default=1, metavar="N", help="calls to play (default 1)"
    )
    calls.add_argument(
        "--duration", type=_positive(float), metavar="SECONDS",
        help="length of each call from its answer (default 10; --demo: the sample's length)",
    )  # fmt: skip
    calls.add_argument(
        "--concurrency", type=_positive(int), metavar="N", help="calls at a time (default: all)"
    )
    calls.add_argument(
        "--audio",
        type=Path,
        metavar="WAV",
        help="8 kHz 16-bit WAV, left = caller, right = agent (default: the shipped sample)",
    )
    calls.add_argument(
        "--script", type=Path, metavar="TXT",
        help="transcription script, `[start-end] inbound|outbound: text` lines (default: the sample's, with the sample audio)",
    )  # fmt: skip
    calls.add_argument(
        "--codec", choices=("PCMU", "PCMA"), default="PCMU", help="the calls' codec (default PCMU)"
    )
    calls.add_argument(
        "--ring",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="ringing before the answer (default 0.5)",
    )
    calls.add_argument(
        "--transcription-engine", choices=TRANSCRIPTION_ENGINES, default="Telnyx",
        help="engine of the transcription each call runs from its answer (default Telnyx: finals with their track)",
    )  # fmt: skip
    calls.add_argument(
        "--no-transcription", action="store_true",
        help="transcribe only when the stack sends transcription_start (INDEXER_AUTO_TRANSCRIBE)",
    )  # fmt: skip
    calls.add_argument(
        "--redeliver-probability", type=_probability, default=0.05, metavar="P",
        help="chance that an accepted webhook is delivered again, as Telnyx does (default 0.05)",
    )  # fmt: skip
    stack = parser.add_argument_group("the stack")
    stack.add_argument(
        "--gateway-url",
        default=f"{local}:{settings.gateway_port}",
        help="default from GATEWAY_PORT",
    )
    stack.add_argument(
        "--ingest-url", default=f"{local}:{settings.ingest_port}", help="default from INGEST_PORT"
    )
    stack.add_argument(
        "--indexer-url",
        default=f"{local}:{settings.indexer_port}",
        help="default from INDEXER_PORT",
    )
    stack.add_argument(
        "--console-url",
        default=f"{local}:{settings.console_port}",
        help="default from CONSOLE_PORT",
    )
    stack.add_argument(
        "--indexer-token",
        default=settings.stack_token(),
        help="bearer of the stack's recordings and API (default the first token of "
        "VOICETAP_API_TOKEN, else INDEXER_API_TOKEN)",
    )
    stack.add_argument(
        "--redis-url",
        default=settings.stack_redis_url(),
        help="the stack's Redis (default REDIS_URL, else the embedded one)",
    )
    stack.add_argument(
        "--redis-cluster", action=argparse.BooleanOptionalAction, default=settings.redis_cluster,
        help="--redis-url is a node of a Redis Cluster (default REDIS_CLUSTER)",
    )  # fmt: skip
    stack.add_argument(
        "--api-port", type=int, default=settings.simulator_api_port,
        help="port of the fake Telnyx API (default SIMULATOR_API_PORT, else 8090; 0: any free port)",
    )  # fmt: skip
    stack.add_argument(
        "--api-key",
        default=settings.telnyx_api_key,
        help="key the fake API accepts (default TELNYX_API_KEY, else the dev keys file's)",
    )
    stack.add_argument(
        "--signing-key", metavar="KEY|FILE",
        help="base64 Ed25519 private key, or a dev keys JSON file, to sign webhooks with "
        f"(default: $VOICETAP_DATA_DIR/{DEV_KEYS_FILE}, written by `voicetap up`)",
    )  # fmt: skip
    stack.add_argument(
        "--data-dir",
        type=Path,
        help="the stack's data directory (default VOICETAP_DATA_DIR; --start-stack: a new temporary one, removed after a passing run)",
    )
    stack.add_argument(
        "--start-stack",
        action="store_true",
        help="start `voicetap up` in local mode for the run, stop it at the end",
    )
    stack.add_argument(
        "--require", type=_services, default=frozenset(), metavar="LIST",
        help="services that must run, e.g. ingest,indexer: one not ready within --wait fails the run "
        "(with --start-stack or --demo: every installed service); others not running are skipped",
    )  # fmt: skip
    stack.add_argument(
        "--wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="wait this long for services to be ready (default 30)",
    )
    stack.add_argument(
        "--settle",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="wait this long after the calls for recordings and transcripts (default 20)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="one short call with speech and a transcript, then where to look",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def options_from(args: argparse.Namespace, settings: SimulatorSettings) -> Options:
    data_dir = args.data_dir
    if data_dir is None and not args.start_stack:
        data_dir = settings.voicetap_data_dir
    return Options(
        calls=1 if args.demo else args.calls,
        duration=args.duration,
        concurrency=min(args.concurrency or args.calls, args.calls) if not args.demo else 1,
        audio=args.audio,
        script=args.script,
        codec=args.codec,
        ring=max(args.ring, 0.0),
        engine=None if args.no_transcription else args.transcription_engine,
        redeliver_probability=args.redeliver_probability,
        gateway_url=args.gateway_url.rstrip("/"),
        ingest_url=args.ingest_url.rstrip("/"),
        indexer_url=args.indexer_url.rstrip("/"),
        console_url=args.console_url.rstrip("/"),
        indexer_token=args.indexer_token,
        api_port=args.api_port,
        api_key=args.api_key,
        signing_key=args.signing_key,
        data_dir=data_dir,
        redis_url=args.redis_url,
        redis_cluster=args.redis_cluster,
        topic_partitions=settings.topic_partitions,
        start_stack=args.start_stack,
        demo=args.demo,
        require=args.require,
        wait=args.wait,
        settle=args.settle,
        json=args.json,
    )


# -- the call material -------------------------------------------------------------------------------
def load_material(opts: Options) -> tuple[CallAudio, list[ScriptLine]]:
    """The audio and script of every call: given files, else the shipped sample."""
    try:
        if opts.audio is not None:
            audio = CallAudio.from_wav(opts.audio)
        else:
            with as_file(files("telnyx_simulator") / "data" / SAMPLE_AUDIO) as path:
                audio = CallAudio.from_wav(path)
        if opts.script is not None:
            script = load_script(opts.script)
        elif opts.audio is None:
            with as_file(files("telnyx_simulator") / "data" / SAMPLE_SCRIPT) as path:
                script = load_script(path)
        else:
            script = []
    except (OSError, ValueError, EOFError) as exc:  # wave raises EOFError on a truncated file
        raise SetupError(str(exc)) from exc
    return audio, script


def call_seconds(opts: Options, audio: CallAudio) -> float:
    if opts.duration is not None:
        return opts.duration
    return audio.seconds + DEMO_TAIL if opts.demo else 10.0


# -- keys --------------------------------------------------------------------------------------------
def _keys_file(opts: Options) -> Path:
    return (opts.data_dir or Path(".voicetap")) / DEV_KEYS_FILE


def dev_keys_from(opts: Options, started: DevKeys | None) -> DevKeys | None:
    """The development keys: the started stack's, a keys file given as ``--signing-key``, else
    the one under the data directory (None when there is none)."""
    if started is not None:
        return started
    given = opts.signing_key
    path = Path(given) if given is not None and Path(given).is_file() else None
    if given is not None and path is None:
        return None  # a key, not a file
    try:
        return read_dev_keys(path or _keys_file(opts))
    except ValueError as exc:
        raise SetupError(str(exc)) from exc


def signer_from(opts: Options, keys: DevKeys | None) -> WebhookSigner:
    """``--signing-key`` (a key or a keys file), else the stack's development keys."""
    try:
        if opts.signing_key is not None and not Path(opts.signing_key).is_file():
            return WebhookSigner.from_private_key(opts.signing_key)
        if keys is None:
            raise SetupError(
                f"no key to sign webhooks with: {_keys_file(opts)} does not exist. Start the stack "
                f"with `{voicetap_command('up')}` (local mode writes it), point --data-dir at its data directory, "
                "pass --signing-key, or use --start-stack"
            )
        return WebhookSigner.from_private_key(keys.private_key)
    except (ValueError, TypeError) as exc:  # binascii.Error is a ValueError
        raise SetupError(f"not a base64 Ed25519 private key to sign webhooks with ({exc})") from exc


def api_key_from(opts: Options, keys: DevKeys | None) -> str:
    """``--api-key``/``TELNYX_API_KEY``, else the development key of local mode."""
    if opts.api_key:
        return opts.api_key
    if keys is not None and keys.api_key:
        return keys.api_key
    log.warning(
        "no API key: neither --api-key, TELNYX_API_KEY nor a keys file with one (%s); the fake API "
        "accepts a made-up key that the stack does not know, so its Call Control commands will be refused",
        _keys_file(opts),
    )
    return "KEYsimulator_unknown"


# -- the run -----------------------------------------------------------------------------------------
async def discover(
    client: httpx.AsyncClient, opts: Options, stack: StartedStack | None
) -> list[ServiceState]:
    """Which services answer. The gateway and required services (see the module's docstring) are
    waited for up to ``--wait``; the others are probed once."""
    deadline = time.monotonic() + opts.wait
    required = set(opts.require)
    if opts.demo or stack is not None:
        required |= installed_services() & set(OPTIONAL_SERVICES)
    expected = required | {"gateway"}
    urls = {
        "gateway": opts.gateway_url,
        "ingest": opts.ingest_url,
        "indexer": opts.indexer_url,
        "console": opts.console_url,
    }

    async def one(name: str) -> ServiceState:
        url = urls[name]
        found = await (
            wait_ready(client, name, url, deadline)
            if name in expected
            else probe(client, name, url)
        )
        detail = found.detail
        if not found.ready and stack is not None and (code := stack.exited()) is not None:
            detail += f"; the started stack exited with code {code} (see {stack.log_path})"
        return ServiceState(name, url, found.ready, detail, name in required)

    return list(await asyncio.gather(*(one(name) for name in urls)))


def service_checks(services: Sequence[ServiceState]) -> list[Check]:
    found: list[Check] = []
    for s in services:
        if s.running:
            found.append(Check(s.name, "pass", f"ready at {s.url}"))
        elif s.name == "gateway" or s.required:
            why = "required" if s.name != "gateway" else "every call goes through it"
            start = f"; start the stack with `{voicetap_command('up')}`, or pass --start-stack"
            found.append(
                Check(s.name, "fail", f"not running at {s.url} ({why}): {s.detail}{start}")
            )
    return found


async def play(
    opts: Options, state: FakeTelnyxState, signer: WebhookSigner, audio: CallAudio,
    script: Sequence[ScriptLine], seconds: float,
) -> tuple[list[CallPlayer], WebhookSender]:  # fmt: skip
    policy = DeliveryPolicy(redeliver_probability=opts.redeliver_probability)
    transcription = (
        None
        if opts.engine is None
        else {
            "transcription_engine": opts.engine,
            "transcription_tracks": "both",
            "transcription_engine_config": {"interim_results": True},
        }
    )
    players: list[CallPlayer] = []
    started: dict[int, float] = {}
    finished: set[int] = set()
    semaphore = asyncio.Semaphore(opts.concurrency)
    call_length = opts.ring + seconds

    async with WebhookSender(opts.gateway_url + WEBHOOK_PATH, signer, policy) as sender:

        async def one(index: int) -> None:
            async with semaphore:
                spec = CallSpec(
                    from_=f"+1312555{index % 10000:04d}",
                    to="+13125550199",
                    audio=audio,
                    script=script,
                    duration=seconds,
                    answer_after=opts.ring,
                    codec=opts.codec,
                    transcription=transcription,
                )
                player = CallPlayer(state, sender, spec)
                players.append(player)
                started[index] = time.monotonic()
                log.debug("call %d: %s", index + 1, player.call.call_control_id)
                try:
                    await player.run()
                finally:
                    finished.add(index)

        def snapshot() -> Snapshot:
            now = time.monotonic()
            playing = [i for i in started if i not in finished]
            done = len(finished) + sum(min((now - started[i]) / call_length, 0.99) for i in playing)
            attempts = sender.deliveries
            packets = sum(checks.media_packets(player) for player in players)
            return Snapshot(
                done,
                len(finished),
                len(playing),
                opts.calls,
                len(attempts),
                sum(d.ok for d in attempts),
                packets,
                sum(checks.media_seconds(player) for player in players),
            )

        progress = asyncio.create_task(
            show_progress(snapshot, interactive=False if opts.demo or opts.json else None)
        )
        try:
            await asyncio.gather(*(one(i) for i in range(opts.calls)))
        finally:
            progress.cancel()
            await asyncio.gather(progress, return_exceptions=True)
    return players, sender


async def simulate(opts: Options) -> Summary:
    audio, script = load_material(opts)
    seconds = call_seconds(opts, audio)
    if not opts.demo:  # the demo's short tail after the sample is deliberate silence
        # A call longer than its audio plays the audio again, never seconds of digital silence.
        audio, script = audio.looped(seconds), looped_script(script, audio.seconds, seconds)
    summary = Summary(opts.calls, seconds, opts.codec, opts.concurrency)
    began = time.monotonic()
    since_ms = int(time.time() * 1000) - SINCE_MARGIN_MS
    state = FakeTelnyxState(opts.api_key or "KEYpending")  # the key is known once keys are read
    async with contextlib.AsyncExitStack() as exits:
        try:
            api_url = await exits.enter_async_context(
                serve(create_fake_api(state), port=opts.api_port)
            )
        except OSError as exc:
            raise SetupError(
                f"the fake Telnyx API cannot listen on 127.0.0.1:{opts.api_port} ({exc.strerror or exc}): "
                f"is another `{voicetap_command('simulate')}` running? Choose another port with --api-port "
                "(and give the stack the same SIMULATOR_API_PORT)"
            ) from exc
        api_port = int(api_url.rsplit(":", 1)[1])
        log.info("fake Telnyx API at %s/v2", api_url)
        stack: StartedStack | None = None
        keys: DevKeys | None = None
        if opts.start_stack:
            data_dir = opts.data_dir
            if data_dir is None:
                data_dir = Path(tempfile.mkdtemp(prefix="voicetap-simulate-"))
                exits.callback(_remove_if_passed, data_dir, summary)  # after the stack has stopped
            stack = StartedStack(
                data_dir,
                env_for_started_stack(
                    os.environ,
                    gateway_port=_port(opts.gateway_url),
                    ingest_port=_port(opts.ingest_url),
                    indexer_port=_port(opts.indexer_url),
                    console_port=_port(opts.console_url),
                    api_port=api_port,
                ),
            )
            stack.start()
            exits.push_async_callback(asyncio.to_thread, stack.stop)  # before the API stops
            try:
                keys = await stack.wait_for_keys(opts.wait)
            except RuntimeError as exc:
                raise SetupError(str(exc)) from exc
        keys = dev_keys_from(opts, keys)
        signer = signer_from(opts, keys)
        state.api_key = api_key_from(opts, keys)
        if stack is None:
            _warn_about_base_url(api_port)

        client = await exits.enter_async_context(httpx.AsyncClient())
        summary.services = await discover(client, opts, stack)
        summary.checks = service_checks(summary.services)
        if any(c.status == "fail" for c in summary.checks):
            summary.elapsed = time.monotonic() - began
            return summary  # nothing to play against, or a required service is missing

        players, sender = await play(opts, state, signer, audio, script, seconds)
        summary.checks += await run_checks(
            opts, client, api_url, state, players, sender, summary, since_ms
        )
    summary.elapsed = time.monotonic() - began
    return summary


def _remove_if_passed(data_dir: Path, summary: Summary) -> None:
    """A temporary stack's directory goes after a passing run; after a failing one its log and
    data stay for a look."""
    if summary.ok:
        shutil.rmtree(data_dir, ignore_errors=True)
    else:
        log.warning("the started stack's log and data are kept in %s", data_dir)


async def run_checks(
    opts: Options, client: httpx.AsyncClient, api_url: str, state: FakeTelnyxState,
    players: Sequence[CallPlayer], sender: WebhookSender, summary: Summary, since_ms: int,
) -> list[Check]:  # fmt: skip
    results: dict[str, CallResult] = {}
    for player in players:
        cid = player.call.call_control_id
        results[cid] = CallResult(cid, player.spec.seconds(), transcript_lines=len(player.finals))
    events: dict[str, tuple[str, str]] = {}  # event id -> (event type, call_control_id)
    for data in sender.sent:
        cid = str(data["payload"].get("call_control_id"))
        events[data["id"]] = (data["event_type"], cid)
        if (result := results.get(cid)) is not None:
            result.events[data["event_type"]] = result.events.get(data["event_type"], 0) + 1
    summary.calls = list(results.values())

    found = [checks.check_webhooks(sender.deliveries)]
    deadline = time.monotonic() + opts.settle
    redis = client_for(
        opts.redis_url, cluster=opts.redis_cluster, socket_timeout=5, socket_connect_timeout=5
    )
    try:
        found.append(
            await checks.check_topics(
                redis,
                sender.deliveries,
                events,
                results,
                since_ms,
                opts.redis_url,
                opts.topic_partitions,
            )
        )
        ingest = summary.service("ingest")
        if ingest is not None and ingest.running:
            found += await checks.check_recordings(
                client,
                opts.ingest_url,
                api_url,
                redis,
                state,
                players,
                results,
                since_ms,
                deadline,
                opts.topic_partitions,
                _bearer(opts.indexer_token),
            )
        else:
            found.append(_skipped("recordings", "media_ingest", ingest))
    finally:
        await redis.aclose()
    indexer = summary.service("indexer")
    if indexer is not None and indexer.running:
        headers = _bearer(opts.indexer_token)
        found.append(
            await checks.check_transcripts(
                client, opts.indexer_url, headers, players, results, deadline
            )
        )
    else:
        found.append(_skipped("transcripts", "transcript_indexer", indexer))
    return found


def _bearer(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


def _skipped(check: str, service: str, state: ServiceState | None) -> Check:
    where = f" at {state.url}" if state else ""
    why = state.detail if state else "unknown"
    return Check(check, "skip", f"{service} is not running{where} ({why}): not checked")


def _port(url: str) -> int:
    port = httpx.URL(url).port
    if port is None:
        raise SetupError(f"--start-stack needs URLs with a port: {url}")
    return port


def _warn_about_base_url(api_port: int) -> None:
    base = os.environ.get("TELNYX_BASE_URL")
    if base and httpx.URL(base).port not in (None, api_port):
        log.warning(
            "TELNYX_BASE_URL is %s, but the fake Telnyx API serves on port %d: the stack's commands "
            "will not reach it", base, api_port,
        )  # fmt: skip


# -- output ------------------------------------------------------------------------------------------
def where_to_look(summary: Summary) -> str:
    """The demo's last words: the recording, transcript and search URLs of its call."""
    call = summary.calls[0] if summary.calls else None
    lines = ["", "Where to look:"]
    if call is None:
        return "\n".join([*lines, "  (no call was played)"])
    ingest, indexer = summary.service("ingest"), summary.service("indexer")
    console = summary.service("console")

    def note(service: ServiceState | None, name: str) -> str:
        return "" if service is not None and service.running else f"   ({name} is not running)"

    ingest_url = ingest.url if ingest else "http://127.0.0.1:8001"
    indexer_url = indexer.url if indexer else "http://127.0.0.1:8002"
    word = call.search_word or "order"
    console_url = console.url if console else "http://127.0.0.1:8080"
    lines += [
        f"  console      {console_url}/calls/{call.call_control_id}{note(console, 'console')}",
        f"  call         {call.call_control_id}",
        f"  recording    {checks.recording_url(ingest_url, call.call_control_id)}{note(ingest, 'media_ingest')}",
        f"  transcript   {checks.transcript_url(indexer_url, call.call_control_id)}{note(indexer, 'transcript_indexer')}",
        f"  search       {checks.search_url(indexer_url, word)}{note(indexer, 'transcript_indexer')}",
        f"  live events  {voicetap_command('tail telnyx.call.transcription')}",
        f"  all topics   {voicetap_command('topics')}",
        f"  more calls   {voicetap_command('simulate --calls 5')}",
    ]
    return "\n".join(lines)


def _configure_logging(settings: SimulatorSettings) -> None:
    """Like the services, unless the program embedding the simulator configured logging already."""
    if not logging.getLogger().handlers:
        configure_logging("simulator", settings.log_level, os.environ.get("LOG_FORMAT", "console"))
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per webhook drowns the progress


def main(argv: list[str] | None = None) -> int:
    """``voicetap simulate ARGS`` and the demo of ``voicetap up --demo`` (entry point ``simulator``)."""
    settings = SimulatorSettings()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--"]:  # `voicetap simulate -- --calls 5` passes the separator on
        argv = argv[1:]
    args = build_parser(settings).parse_args(argv)
    _configure_logging(settings)
    opts = options_from(args, settings)
    try:
        summary = asyncio.run(simulate(opts))
    except SetupError as exc:
        print(f"voicetap simulate: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("voicetap simulate: interrupted", file=sys.stderr)
        return 130
    if opts.json:
        print(codec.dumps(summary.to_json()).decode())
    else:
        print(summary.render())
        if opts.demo:
            print(where_to_look(summary))
    sys.stdout.flush()
    return 0 if summary.ok else 1
