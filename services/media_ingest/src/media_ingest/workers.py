"""``voicetap ingest --workers N``: N worker processes of one host under this supervisor.

Worker *k* is an ordinary instance (``media_ingest.worker``) named ``<host>-w<k>`` (host:
``INGEST_INSTANCE_ID`` when set, else the hostname) with its contiguous share of
``INGEST_RTP_PORTS``; all of them serve ``INGEST_PORT`` (SO_REUSEPORT), and each also a private
loopback port that its siblings relay media streams to and ask for its readiness. The names, the
shares and the private ports stay the same when a worker is restarted, so it resumes its calls.

The children are run by :class:`~voicetap_common.supervisor.Supervisor`: a worker that crashes is
restarted with backoff, SIGTERM/SIGINT stop every worker (each finishes its calls) and wait for
them, and a worker that exits before it was ever ready stops them all with its own last line.
"""

import json
import logging
import os
import socket
import sys

from media_ingest.settings import IngestSettings
from media_ingest.sockets import port_of, private_socket, shared_socket
from media_ingest.worker_plan import PlanError, WorkerPlan, plan_workers
from voicetap_common.supervisor import ChildSpec, Supervisor, child_env

log = logging.getLogger("voicetap.media_ingest.workers")

# A worker finishes its calls, uploads and events on SIGTERM within the bounds of
# ``service.IngestService._stop`` (about 35 s at worst): more than that before it is killed.
STOP_SECONDS = 45.0


def supervise(settings: IngestSettings, count: int) -> int:
    """Run ``count`` workers until a signal stops them; the exit status (a failure exits with its
    one line)."""
    host = settings.ingest_instance_id or socket.gethostname()
    try:
        plans = plan_workers(host, settings.rtp_port_range(), count)
    except PlanError as exc:
        sys.exit(f"voicetap ingest: {exc}")
    try:
        reservation = shared_socket(settings.ingest_host, settings.ingest_port)
    except OSError as exc:
        sys.exit(
            f"voicetap ingest: INGEST_PORT {settings.ingest_port} on {settings.ingest_host!r} "
            f"cannot be bound: {exc.strerror or exc}"
        )
    private = {plan.instance: private_socket() for plan in plans}
    directory = {instance: port_of(sock) for instance, sock in private.items()}
    port = port_of(reservation)
    specs = [_spec(plan, port, private[plan.instance], directory) for plan in plans]
    for plan in plans:
        log.info(
            "worker %s: RTP ports %s, HTTP port %d shared, private port %d",
            plan.instance,
            plan.rtp_setting,
            port,
            directory[plan.instance],
        )
    supervisor = Supervisor(
        specs,
        child_env(os.environ),
        lambda: log.info("%d ingest workers ready on port %d", len(plans), port),
        what="ingest",
        stop_seconds=STOP_SECONDS,
    )
    try:
        supervisor.start()
        status = supervisor.run()
    finally:
        for sock in (reservation, *private.values()):
            sock.close()
    if supervisor.failure is not None:
        sys.exit(f"voicetap ingest: {supervisor.failure}")
    return status


def _spec(
    plan: WorkerPlan, port: int, private: socket.socket, directory: dict[str, int]
) -> ChildSpec:
    return ChildSpec(
        plan.instance,
        (
            sys.executable,
            "-m",
            "media_ingest.worker",
            "--private-fd",
            str(private.fileno()),
            "--siblings",
            json.dumps(directory),
        ),
        ready_url=f"http://127.0.0.1:{directory[plan.instance]}/readyz?worker",
        env={
            "INGEST_INSTANCE_ID": plan.instance,
            "INGEST_RTP_PORTS": plan.rtp_setting,
            "INGEST_PORT": str(port),
            "INGEST_WORKERS": "1",  # a worker is one instance; it never supervises
        },
        pass_fds=(private.fileno(),),
    )
