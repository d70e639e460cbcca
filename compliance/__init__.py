"""Pure compliance rules, the attempt ledger interface and its SQLite and PostgreSQL implementations.

Public API: `compliance.numbers` (normalize, mask_number, ParsedNumber, InvalidNumber), `compliance.reasons.Reason`,
`compliance.packs.load_pack`, `compliance.settings` (CampaignCompliance, effective_rules), `compliance.rules.decide`
(pure), `compliance.gate` (Gate, CampaignContext, Decision), `compliance.audit` (hash chains, verify_rows),
`compliance.retention` (recordings_to_delete). Rules never read the clock or do I/O; only ledger*.py do I/O.
"""
