"""The closed set of reason codes a compliance decision carries, and which one wins when several apply."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Reason", "PERMANENT", "winning_reason"]


class Reason(StrEnum):
    """Documented closed set, in precedence order: permanent reasons first win, in this order."""

    ok = "ok"
    invalid_number = "invalid_number"
    dnc = "dnc"
    no_consent = "no_consent"
    consent_expired = "consent_expired"
    refused_too_often = "refused_too_often"
    outside_calling_window = "outside_calling_window"
    holiday = "holiday"
    frequency_cap = "frequency_cap"
    backoff = "backoff"
    recent_abandon = "recent_abandon"
    abandon_cap = "abandon_cap"
    caller_id_unregistered = "caller_id_unregistered"


# Permanent: no instant in the future passes by waiting; someone must change the data (consent, registration).
PERMANENT = frozenset(
    {
        Reason.invalid_number,
        Reason.dnc,
        Reason.no_consent,
        Reason.consent_expired,
        Reason.refused_too_often,
        Reason.caller_id_unregistered,
    }
)

_ORDER = {reason: index for index, reason in enumerate(Reason)}


def winning_reason(reasons) -> Reason:
    """The reason a refusal reports: permanent ones first, each group in the documented order; ok if none."""
    failing = [r for r in reasons if r is not Reason.ok]
    if not failing:
        return Reason.ok
    return min(failing, key=lambda r: (r not in PERMANENT, _ORDER[r]))
