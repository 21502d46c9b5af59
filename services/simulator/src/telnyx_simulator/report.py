"""The closing summary of a simulation: what was checked, what passed, failed or was skipped.

Rendered for people (``render``) or as JSON (``to_json``, ``--json``). A failed check makes the
run fail; a skipped one (a service that is not running and not required) does not, and says why.
"""

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from voicetap_common.command_line import voicetap_command

Status = Literal["pass", "fail", "skip"]
_LABELS: dict[Status, str] = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}
MAX_PROBLEMS_SHOWN = 8


@dataclass
class Check:
    name: str
    status: Status
    detail: str
    problems: list[str] = field(default_factory=list)  # one line per thing that is missing


@dataclass
class ServiceState:
    name: str
    url: str
    running: bool
    detail: str
    required: bool = False


@dataclass
class CallResult:
    """What a user would look at for one call."""

    call_control_id: str
    seconds: float
    events: dict[str, int] = field(default_factory=dict)  # event type -> events sent
    topics: dict[str, int] = field(default_factory=dict)  # topic -> entries of this call found
    media: list[str] = field(default_factory=list)  # media commands the stack sent (fork_start…)
    media_seconds: float = 0.0  # audio sent to the stack
    recording_url: str | None = None
    recording_seconds: float | None = None
    transcript_url: str | None = None
    transcript_lines: int = 0  # final results sent
    search_word: str | None = None


@dataclass
class Summary:
    calls_asked: int
    duration: float
    codec: str
    concurrency: int
    elapsed: float = 0.0
    services: list[ServiceState] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    calls: list[CallResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.status != "fail" for c in self.checks)

    def service(self, name: str) -> ServiceState | None:
        return next((s for s in self.services if s.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "calls_asked": self.calls_asked,
            "duration": self.duration,
            "codec": self.codec,
            "concurrency": self.concurrency,
            "elapsed": round(self.elapsed, 3),
            "services": {s.name: asdict(s) for s in self.services},
            "checks": [asdict(c) for c in self.checks],
            "calls": [asdict(c) for c in self.calls],
        }

    def render(self) -> str:
        lines = [
            f"voicetap simulate: {self.calls_asked} call{'s' if self.calls_asked != 1 else ''} of "
            f"{self.duration:.1f} s ({self.codec}), {self.concurrency} at a time, in {self.elapsed:.1f} s",
            "services:",
        ]
        for s in self.services:
            state = "running" if s.running else f"not running: {s.detail}"
            lines.append(f"  {s.name:<8} {s.url:<28} {state}{' (required)' if s.required else ''}")
        if self.calls:
            lines.append(f"calls (ids for `{voicetap_command('call ACTION CALL_CONTROL_ID')}`):")
            lines += [f"  {call.call_control_id}" for call in self.calls]
        else:
            lines.append("calls: no call was played")
        lines.append("checks:")
        width = max((len(c.name) for c in self.checks), default=0)
        for check in self.checks:
            lines.append(f"  {_LABELS[check.status]}  {check.name:<{width}}  {check.detail}")
            for problem in check.problems[:MAX_PROBLEMS_SHOWN]:
                lines.append(f"        - {problem}")
            if len(check.problems) > MAX_PROBLEMS_SHOWN:
                lines.append(f"        - … and {len(check.problems) - MAX_PROBLEMS_SHOWN} more")
        failed = sum(c.status == "fail" for c in self.checks)
        skipped = sum(c.status == "skip" for c in self.checks)
        verdict = "PASS" if self.ok else f"FAIL ({failed} check{'s' if failed != 1 else ''} failed)"
        lines.append(f"result: {verdict}" + (f", {skipped} skipped" if skipped else ""))
        return "\n".join(lines)
