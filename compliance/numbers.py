"""Phone number parsing (phonenumbers), candidate time zones, and the one masking helper for logs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import timezone as number_timezones

__all__ = ["InvalidNumber", "ParsedNumber", "normalize", "mask_number"]

_UNKNOWN_ZONE = "Etc/Unknown"


class InvalidNumber(ValueError):
    """A number that does not parse or is not a valid number; `reason` says why."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class ParsedNumber:
    e164: str
    region: str | None
    time_zones: tuple[str, ...]


def _time_zones(parsed: phonenumbers.PhoneNumber) -> tuple[str, ...]:
    zones = tuple(z for z in number_timezones.time_zones_for_number(parsed) if z != _UNKNOWN_ZONE)
    if not zones:
        # Non-geographic ranges (mobile in some plans, toll-free): every zone of the country must pass.
        zones = tuple(
            z for z in number_timezones._country_level_time_zones_for_number(parsed) if z != _UNKNOWN_ZONE
        )
    return tuple(sorted(zones))


@lru_cache(maxsize=65536)
def normalize(raw: str, default_region: str | None = None) -> ParsedNumber:
    """Parse raw into E.164 with its region and candidate time zones, or raise InvalidNumber."""
    text = (raw or "").strip()
    if not text:
        raise InvalidNumber("empty phone number")
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(f"cannot parse phone number {mask_number(text)!r}: {exc._msg}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber(f"not a valid phone number: {mask_number(text)!r}")
    zones = _time_zones(parsed)
    if not zones:
        raise InvalidNumber(f"no time zone known for {mask_number(text)!r}")
    return ParsedNumber(
        e164=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        region=phonenumbers.region_code_for_number(parsed),
        time_zones=zones,
    )


_NOT_DIALABLE = re.compile(r"[^0-9+]")


def mask_number(e164_or_raw: str) -> str:
    """Mask the middle of a number for logs: "+8613812348000" -> "+86138****8000"."""
    compact = _NOT_DIALABLE.sub("", e164_or_raw or "")
    digits = compact.lstrip("+")
    plus = "+" if compact.startswith("+") else ""
    if len(digits) <= 6:
        return plus + "*" * max(len(digits) - 2, 0) + digits[-2:] if digits else "****"
    head = 5 if len(digits) >= 11 else 3
    return f"{plus}{digits[:head]}****{digits[-4:]}"
