"""Restart in place: a process of an instance with a stable name (``INGEST_INSTANCE_ID``, or worker
*k* of a host) that was killed and comes back while its calls' holder keys still name it picks
those calls up again before it takes any other work.

For each recording it left mid-call (a sidecar naming this instance) whose call it still holds and
that has not hung up: the WAV is repaired and written on from where it ends, aligned to the call's
wall clock (the downtime is silence and a ``worker_restart`` gap); a fork gets its leased ports back
(Telnyx still sends there) or, failing that, a new pair and ``fork_start``; a stream is asked for
again (``streaming_start`` to this instance with a fresh token); a paused call stays paused. The
call then ends once, with one recording and one completed event. Recordings it cannot pick up are
left to :mod:`media_ingest.recovery` (repaired and announced as recovered).
"""

import logging
from pathlib import Path

from media_ingest.calls.call import Call
from media_ingest.calls.registry import CallRegistry
from media_ingest.commands import MediaCommands
from media_ingest.endings import CallEndings
from media_ingest.keys import ENDED_PREFIX, owner_key
from media_ingest.ownership import Ownership
from media_ingest.ports import PortPair
from media_ingest.protocol.wav import repair_wav
from media_ingest.recording.sidecar import Orphan, find_orphans
from media_ingest.redis_values import text
from voicetap_common.call_control import classify
from voicetap_common.erasure import erased_among
from voicetap_sdk.commands import StreamingStart
from voicetap_sdk.redis_client import RedisClient

log = logging.getLogger("voicetap.media_ingest.resumption")


class Resumption:
    def __init__(
        self,
        redis: RedisClient,
        registry: CallRegistry,
        commands: MediaCommands,
        ownership: Ownership,
        endings: CallEndings,
        *,
        instance: str,
        data_dir: Path,
    ) -> None:
        self._redis = redis
        self._registry = registry
        self._commands = commands
        self._ownership = ownership
        self._endings = endings
        self._instance = instance
        self._data_dir = data_dir

    async def resume_own_calls(self) -> list[str]:
        """Pick up every live call an earlier process of this instance left; their ids."""
        orphans = [o for o in find_orphans(self._data_dir) if o.instance == self._instance]
        erased = await erased_among(self._redis, (o.call_control_id for o in orphans))
        resumed = []
        for orphan in orphans:
            if orphan.call_control_id not in erased and await self._still_ours(orphan):
                call = self._reopen(orphan)
                if call is not None:
                    await self._restart_media(call, orphan)
                    resumed.append(call.call_control_id)
        return resumed

    async def _still_ours(self, orphan: Orphan) -> bool:
        ccid = orphan.call_control_id
        if ccid in self._registry:
            return False
        holder = await self._redis.get(owner_key(ccid))
        if holder is None or text(holder) != self._instance:
            return False  # its lease ran out (or another instance took it over)
        return not await self._redis.exists(ENDED_PREFIX + ccid)

    def _reopen(self, orphan: Orphan) -> Call | None:
        try:
            repair_wav(orphan.wav)
            return self._registry.resume(orphan.call_control_id, orphan.wav, orphan.facts)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error(
                "could not pick a live call up again: its recording is recovered instead",
                extra={"call_control_id": orphan.call_control_id, "error": str(exc)},
            )
            return None

    async def _restart_media(self, call: Call, orphan: Orphan) -> None:
        ccid = call.call_control_id
        await self._ownership.claim(ccid)
        live = orphan.facts.get("live")
        command_id = f"resume:{ccid}:{call.gaps[-1]['start']}"
        try:
            if live == "fork":
                ports = orphan.facts.get("fork")
                pair = PortPair(int(ports[0]), int(ports[1])) if ports else None
                await self._commands.resume_fork(call, pair, command_id)
            elif live == "stream":
                await self._commands.streaming_start(
                    StreamingStart(id=command_id, call_control_id=ccid)
                )
        except Exception as exc:  # noqa: BLE001 - classified: the call stays, paused
            kind, detail, _ = classify(exc)
            if kind == "call_ended":  # hung up while this process was down
                await self._endings.finish(call, "hangup")
                return
            log.warning(
                "a live call was picked up again but its media could not be restarted",
                extra={"call_control_id": ccid, "media": live, "kind": kind, "error": detail},
            )
            call.pause()
        await self._ownership.note(call)
        log.warning(
            "picked a live call up again after a restart",
            extra={"call_control_id": ccid, "media": live, "gap_start": call.gaps[-1]["start"]},
        )
