"""The fidelity report's shape: written by ``recworld validate``, stored in the ``Validation`` table, read by the dashboard.

One model for the writer and the readers, so a renamed field fails the writer's own
validation instead of leaving an empty dashboard column.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Part(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class Scores(_Part):
    """Accuracy, precision, recall and F1 of the users' decisions against the real ones."""

    accuracy: float
    precision: float
    recall: float
    f1: float


class ShownItems(_Part):
    """What a sampled protocol run (LLM brains) showed and decided, one entry per page."""

    users: list[int]
    items: list[int]
    labels: list[bool] = Field(description="the user really rated the item (held out)")
    decisions: list[bool] = Field(description="the simulated user watched it")


class Alignment(_Part):
    """Agent4Rec's taste alignment at one ratio (1 held-out real item : m never-rated items)."""

    shown: int = Field(description="items shown, each alone on a page")
    positives: int = Field(description="of which held-out items the user really rated")
    most_likely: Scores | None = Field(None, description="each user's most likely decision (user-model brains; the llm brain only samples)")
    sampled: Scores = Field(description="decisions as sampled in a run")
    fallbacks: int = Field(0, description="LLM decisions that fell back to the utility model")
    items: ShownItems | None = Field(None, description="the pages of a sampled run (LLM brains on a sample of users)")


class Propensity(_Part):
    """Mean per-user AUC of held-out interactions against never-interacted items."""

    model: float = Field(description="the simulated users' watch propensity")
    popularity: float = Field(description="reference: training-set popularity")
    mf: float = Field(description="reference: implicit MF on the same split")


class Ratings(_Part):
    """Held-out ratings against the users' rating head."""

    rmse: float
    mae: float
    global_mean_rmse: float = Field(description="reference: predicting the training mean")
    tv: float = Field(description="total-variation distance of the sampled vs the real histogram")
    histogram_sampled: list[float]
    histogram_real: list[float]
    ratings: int = Field(description="held-out ratings compared")


class RecommenderAgreement(_Part):
    """One recommender: offline accuracy on the real held-out log and engagement in the simulation."""

    recommender: str
    recall_at_10: float = Field(alias="recall@10")
    ndcg_at_10: float = Field(alias="ndcg@10")
    watches_per_user: float
    watch_rate: float
    sessions_per_user: float
    top10_share: float = Field(description="share of simulated watches on the top 10% of items")
    per_user_ks: float = Field(description="KS distance of watches per user, simulated vs real")


class Agreement(_Part):
    """Sim-to-real agreement: the recommenders ranked by simulated engagement and by real held-out accuracy."""

    ticks: int
    rows: list[RecommenderAgreement]
    spearman_recall: float | None
    kendall_recall: float | None
    spearman_ndcg: float | None
    kendall_ndcg: float | None
    real_top10_share: float
    real_per_user_quantiles: list[float]


class Target(_Part):
    """A stated target and whether the measured value meets it."""

    value: float | None
    target: float
    met: bool | None


class FitSummary(_Part):
    """The fitted choice and awareness coefficients and the exposure assumption they were fitted under."""

    coefficients: dict[str, float] | None = None
    awareness: dict[str, float] | None = None
    exposures_per_watch: float


class ConversationMode(_Part):
    """Conversations of one intent mode in validation."""

    conversations: int
    success: float
    success_ci: list[float] = Field(description="95% interval of the success rate")
    recall: dict[str, float] = Field(description="recall@k by turn (iEvaLM): '@1', '@3', '@5'")
    agent_turns: float


class ConversationValidation(_Part):
    """iEvaLM's interactive protocol: the same users talk with the conversational agent in three intent modes."""

    users: int
    agent: str
    modes: dict[str, ConversationMode] = Field(description="'target' (drawn from the model's taste), 'target_free', 'held_out' (a held-out real item)")


class ValidationReport(_Part):
    """Everything ``recworld validate`` measured (the JSON it writes and stores)."""

    scenario: str
    brain: str
    holdout: float
    seed: int
    fit: FitSummary
    taste_alignment: dict[str, Alignment] = Field(description="by ratio: '1:1', '1:3', '1:9'")
    auc: Propensity | None = None
    ratings: Ratings | None = None
    agreement: Agreement | None = None
    conversations: ConversationValidation | None = None
    targets: dict[str, Target]
    seconds: float


__all__ = [
    "Agreement",
    "Alignment",
    "ConversationMode",
    "ConversationValidation",
    "ShownItems",
    "FitSummary",
    "Propensity",
    "Ratings",
    "RecommenderAgreement",
    "Scores",
    "Target",
    "ValidationReport",
]
