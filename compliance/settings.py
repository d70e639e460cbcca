"""A campaign's compliance settings (validated config section)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CampaignCompliance(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rule_pack: str = Field("us", description="rule pack name under config/packs/ (cn, us, uk)")
