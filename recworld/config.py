"""Frozen, validated configuration of the world's dynamics (the kernel's part of a scenario)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class WorldConfig(BaseModel):
    """Dynamics of sessions, returns and churn.

    Attributes:
        slate_size: items per page (k).
        max_pages: pages per session at most.
        period_ticks: ticks per retention period (24 = a day when a tick is an hour).
        mean_return_ticks: mean time away for a user with activity 1 and neutral satisfaction.
        return_sensitivity: how strongly satisfaction shortens time away (KuaiSim-style).
        churn_base: churn probability at session end at satisfaction 0.5.
        churn_sensitivity: how strongly low satisfaction raises churn.
        satisfaction_rate: EMA rate of satisfaction per page.
        drift_rate: how far interests move towards a watched item.
        anchor_rate: pull of interests back to the initial taste per session.
        fatigue_per_page: fatigue added per page seen.
        fatigue_recovery_ticks: time constant of fatigue recovery while away.
        log_impressions: also log an IMPRESSION event per item shown (WATCH/SKIP already imply it).
        log_skips: log a SKIP event per item shown and not watched (most of the log;
            turn off for very large runs: per-tick metrics still count impressions).
        post_capacity: room for user-created items (posts) in the per-user seen matrix.
        tired_fatigue: a user who leaves with at least this fatigue (and watched
            something on the last page) left "tired"; below it, "satisfied"
            (only labels the LEAVE event's reason, never changes a decision).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    slate_size: int = Field(10, ge=1, le=100)
    max_pages: int = Field(8, ge=1, le=1000)
    period_ticks: int = Field(24, ge=1)
    mean_return_ticks: float = Field(24.0, gt=0)
    return_sensitivity: float = Field(2.0, ge=0)
    churn_base: float = Field(0.02, ge=0, le=1)
    churn_sensitivity: float = Field(6.0, ge=0)
    satisfaction_rate: float = Field(0.25, gt=0, le=1)
    drift_rate: float = Field(0.03, ge=0, le=1)
    anchor_rate: float = Field(0.01, ge=0, le=1)
    fatigue_per_page: float = Field(0.12, ge=0)
    fatigue_recovery_ticks: float = Field(6.0, gt=0)
    log_impressions: bool = False
    log_skips: bool = True
    post_capacity: int = Field(2000, ge=0)
    tired_fatigue: float = Field(0.5, ge=0)
