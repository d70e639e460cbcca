"""The telephony backend the runtime drives.

``Telephony`` is the part of the SIP ``sip.switch.Switch`` API the runtime uses, so tests can drive the runtime
with a double (tests/dialer/simulated_telephony.py) as well as the real switch. A call reports its progress as the
core's own event types (``Ringing``, ``Answered``, ``Failed``, ``Ended``) whose ``call_id`` is the telephony
call's id; the runtime maps that id to the core's call id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from dialer.core.events import Answered, Ended, Failed, Ringing

CallEvent = Ringing | Answered | Failed | Ended


class TelephonyCall(Protocol):
    call_id: str
    state: str

    def events(self) -> AsyncIterator[CallEvent]: ...


class Telephony(Protocol):
    async def originate(self, trunk: str, number: str, caller_id: str, headers: dict[str, str],
                        ring_timeout_s: float) -> TelephonyCall: ...

    async def call_agent(self, uri_or_agent_id: str) -> TelephonyCall: ...

    async def bridge(self, a: TelephonyCall, b: TelephonyCall, recording_path: Path | None) -> None: ...

    async def unbridge(self, a: TelephonyCall, b: TelephonyCall) -> None: ...

    async def play(self, call: TelephonyCall, announcement_path: Path | None) -> None: ...

    async def hangup(self, call: TelephonyCall, reason: str = "normal") -> None: ...

    async def stop(self) -> None: ...
