"""Pacing settings of a campaign (validated config section)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PacingSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["preview", "progressive", "predictive"] = Field("predictive", description="pacing policy")
    interval_s: float = Field(1.0, gt=0, description="how often the dial loop asks the pacer, seconds")
    target_abandon_rate: float = Field(0.03, ge=0, le=1, description="abandoned / answered calls the pacer aims at")
    max_lines_per_agent: float = Field(3.0, ge=1, description="cap on calls in flight per available agent")
