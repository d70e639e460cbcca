"""Pacing settings of a campaign (validated config section). Every tunable of the pacer lives here."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PacingMode = Literal["preview", "progressive", "predictive", "adapt"]


class PacingSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: PacingMode = Field(
        "predictive",
        description="pacing policy: preview, progressive, predictive, or adapt (VICIdial-style ADAPT, for comparison);"
        " default predictive",
    )
    interval_s: float = Field(1.0, gt=0, description="how often the dial loop asks the pacer, seconds; default 1.0")
    target_abandon_rate: float = Field(
        0.03, ge=0, le=1, description="abandoned / answered calls the window must stay under, ratio; default 0.03"
    )
    max_lines_per_agent: float = Field(
        3.0, ge=1, description="cap on calls ringing or waiting per available (not paused) agent, lines; default 3.0"
    )
    # safeguards
    cold_start_min_outcomes: int = Field(
        50, ge=1, description="dial outcomes to observe before leaving progressive, calls; default 50"
    )
    cold_start_min_talks: int = Field(
        10, ge=1, description="finished conversations to observe before leaving progressive, calls; default 10"
    )
    progressive_below_agents: int = Field(
        2, ge=0, description="with fewer available agents than this the pacer stays progressive, agents; default 2"
    )
    # the abandonment model
    horizon_s: float = Field(
        26.0,
        gt=0,
        description="how far ahead answers are matched with agents coming free; should cover the no-answer timeout,"
        " seconds; default 26",
    )
    horizon_step_s: float = Field(
        1.0, gt=0, description="time step of that look-ahead, seconds; default 1"
    )
    aim_fraction: float = Field(
        0.95,
        gt=0,
        le=1,
        description="the closed loop aims at this fraction of target_abandon_rate (headroom for chance), ratio;"
        " default 0.95",
    )
    initial_marginal_factor: float = Field(
        0.3,
        gt=0,
        description="the marginal abandon ratio a new call may carry, as a fraction of target_abandon_rate, before"
        " the closed loop has measured anything; ratio; default 0.3",
    )
    closed_loop_gain: float = Field(
        0.4,
        ge=0,
        description="log-change of that marginal ratio per standard deviation of abandon budget left (positive) or"
        " overspent (negative) in the regulatory window; higher reacts faster and wobbles more; default 0.4",
    )
    closed_loop_integral_gain: float = Field(
        0.5,
        ge=0,
        description="how fast the loop learns the model's bias: log-change of the marginal ratio per abandoned call"
        " (and +aim per answered call), divided by the square root of the window's allowed abandons; 0 turns"
        " learning off; default 0.5",
    )
    closed_loop_min_factor: float = Field(
        0.02, gt=0, description="lowest marginal ratio, as a fraction of target_abandon_rate; default 0.02"
    )
    closed_loop_max_factor: float = Field(
        5.0, gt=0, description="highest marginal ratio, as a fraction of target_abandon_rate; default 5"
    )
    # estimators
    answer_rate_short_window: int = Field(
        100, ge=5, description="recent dial outcomes compared with the long window to detect a change; default 100"
    )
    answer_rate_long_window: int = Field(
        2000, ge=10, description="dial outcomes the answer rate is estimated from, calls; default 2000"
    )
    answer_rate_change_z: float = Field(
        4.0,
        gt=0,
        description="z-score of short vs long window answer rates above which the long window restarts from the"
        " short one; lower reacts faster, higher is steadier; default 3.5",
    )
    ring_time_window: int = Field(
        1000, ge=10, description="recent ring times (answered and failed) kept, calls; default 1000"
    )
    talk_time_window: int = Field(500, ge=10, description="recent talk times kept, calls; default 500")
    wrap_time_window: int = Field(200, ge=5, description="recent wrap-up times kept, calls; default 200")
    duration_min_samples: int = Field(
        20,
        ge=2,
        description="below this many samples a duration uses the lognormal prior; a conditional tail with fewer"
        " samples beyond the elapsed time uses the fitted lognormal, calls; default 20",
    )
    prior_talk_mean_s: float = Field(120.0, gt=0, description="talk time assumed before data, seconds; default 120")
    prior_talk_sd_s: float = Field(90.0, gt=0, description="its standard deviation, seconds; default 90")
    prior_wrap_s: float = Field(10.0, ge=0, description="wrap-up assumed before data, seconds; default 10")
    model_refresh_s: float = Field(
        10.0, gt=0, description="how often the duration tables are rebuilt from the estimators, seconds; default 10"
    )
    # ADAPT comparison controller
    adapt_interval_s: float = Field(15.0, gt=0, description="ADAPT: dial level update period, seconds; default 15")
    adapt_max_level: float = Field(3.0, ge=1, description="ADAPT: highest dial level, lines per agent; default 3")

    @model_validator(mode="after")
    def _windows_consistent(self) -> "PacingSettings":
        if self.answer_rate_short_window >= self.answer_rate_long_window:
            raise ValueError("answer_rate_short_window must be smaller than answer_rate_long_window")
        if self.horizon_step_s > self.horizon_s:
            raise ValueError("horizon_step_s must not exceed horizon_s")
        return self
