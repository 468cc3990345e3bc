"""Typed payloads of the event log: one model per event type that carries a payload.

The ``Event.payload`` column holds JSON. The code that writes an event builds
its payload with the model of its type (:meth:`Payload.dump`) and the code that
reads it parses it with the same model (:meth:`Payload.read`), so writer and
reader cannot drift apart (a dashboard once looked for ``parent`` while the
social layer wrote ``parent_post``).

Event types and their payloads:

======================  ==========================  =============================================
type                    model                       written by
======================  ==========================  =============================================
LEAVE                   :class:`LeavePayload`       the world (why the session ended)
FEELING, INSTRUCTION    :class:`AuthoredPayload`    the world, from the brain's ``authored``
POST                    :class:`PostPayload`        the social layer
SOCIAL_WATCH            :class:`SocialWatchPayload` the social layer
CHAT                    :class:`ChatPayload`        the social layer
SEARCH                  :class:`SearchPayload`      the search layer
CONVERSE                :class:`TurnPayload`        the conversation layer (one per turn)
CONVERSATION_END        :class:`ConversationEndPayload`  the conversation layer
======================  ==========================  =============================================

Other event types carry no payload.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticUndefined

from recworld.events import EventType

LeaveReason = Literal["page_limit", "nothing_to_watch", "tired", "satisfied", "session_closed"]
LEAVE_REASONS: tuple[str, ...] = get_args(LeaveReason)
# How each reason reads on a page, and what decides it (see World._leave_reasons).
LEAVE_REASON_LABELS: dict[str, str] = {
    "page_limit": "reached the page limit",
    "nothing_to_watch": "nothing worth watching on the page",
    "tired": "tired (fatigue)",
    "satisfied": "satisfied enough",
    "session_closed": "session closed at the end of the tick",
}

Author = Literal["llm", "template"]

# Per payload class: field name -> default (PydanticUndefined when required), in declaration order (Payload.dump_of).
_FIELDS: dict[type, dict[str, Any]] = {}


class Payload(BaseModel):
    """Base of event payloads: frozen, validated, JSON in the event log.

    Unknown keys are ignored on read, so logs written by a newer RecWorld still
    parse; :meth:`read` answers ``None`` for anything that does not validate.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    #: Optional fields left out of the stored JSON when they are ``None``.
    omit_none: ClassVar[tuple[str, ...]] = ()

    def dump(self) -> dict[str, Any]:
        """The JSON-able dict stored in ``Event.payload``."""
        d = self.model_dump()
        for k in self.omit_none:
            if d.get(k) is None:
                d.pop(k, None)
        return d

    @classmethod
    def dump_of(cls, **fields: Any) -> dict[str, Any]:
        """``cls(**fields).dump()`` without building and validating the model, for writers of thousands of events a
        second (conversation turns) that pass plain values of the fields' types: same keys, same order, same values
        (a test holds them equal; readers still validate with :meth:`read`).

        Raises:
            TypeError: a field the model does not have, or a required one missing.
        """
        spec = _FIELDS.get(cls)
        if spec is None:
            spec = _FIELDS[cls] = {name: info.default for name, info in cls.model_fields.items()}
        if not fields.keys() <= spec.keys():
            raise TypeError(f"{cls.__name__} has no field {sorted(fields.keys() - spec.keys())[0]!r}")
        d: dict[str, Any] = {}
        for name, default in spec.items():
            if name in fields:
                v = fields[name]
            elif default is PydanticUndefined:
                raise TypeError(f"{cls.__name__}: field {name!r} is required")
            else:
                v = list(default) if isinstance(default, list) else default
            if v is None and name in cls.omit_none:
                continue
            d[name] = v
        return d

    @classmethod
    def read(cls, raw: str | dict[str, Any] | None) -> Any:
        """Parse a stored payload (JSON text or dict); ``None`` when missing or malformed."""
        if raw is None:
            return None
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                return None
        if not isinstance(raw, dict):
            return None
        try:
            return cls.model_validate(raw)
        except ValidationError:
            return None


class LeavePayload(Payload):
    """LEAVE: why the session ended (value = pages seen)."""

    reason: LeaveReason


class AuthoredPayload(Payload):
    """FEELING and INSTRUCTION: who wrote the text (the LLM, or a template as a fallback).

    Attributes:
        by: who wrote the text.
        asked: the tick of the page the text is about, when the text was
            written in the background and heard later (the language
            pipeline); absent when it was said on the page itself.
    """

    omit_none: ClassVar[tuple[str, ...]] = ("asked",)

    by: Author
    asked: int | None = None


class PostPayload(Payload):
    """POST: a post or reshare and its place in a share cascade.

    Attributes:
        post: the post's id (0, 1, ... in the run, in order of posting).
        parent_post: the post it reshares, ``None`` for an original post.
        cascade: id of the cascade's root post.
        depth: reshare depth (0 for the root).
        by: who wrote the text.
        about_item: for original content (a new catalog item), the item it is about.
    """

    omit_none: ClassVar[tuple[str, ...]] = ("about_item",)

    post: int
    parent_post: int | None
    cascade: int
    depth: int
    by: Author = "template"
    about_item: int | None = None


class SocialWatchPayload(Payload):
    """SOCIAL_WATCH: the post the item was watched from (value = its author)."""

    post: int
    cascade: int


class ChatPayload(Payload):
    """CHAT: one message of a conversation (value = the partner's user id)."""

    conversation: int
    turn: int
    by: Author = "template"


SearchIntent = Literal["known_item", "explore"]


class SearchPayload(Payload):
    """SEARCH: a user's query (text) and the results page it returned (value = results watched).

    Attributes:
        results: item ids shown, best first.
        clicked: the results the user watched.
        intent: ``known_item`` (looking for a title they know: the query holds
            title words) or ``explore`` (genres and era from their taste).
        wanted: the item the user was after (drawn from their taste; hidden from the search).
        by: who wrote the query.
    """

    results: list[int]
    clicked: list[int]
    intent: SearchIntent
    wanted: int
    by: Author = "template"


Role = Literal["user", "agent"]
#: What a turn does. User acts: request, answer, accept, reject, ask_about, leave.
#: Agent acts: ask, recommend, answer_item, end (a search is a tool call inside an act).
TurnAct = Literal["request", "answer", "accept", "reject", "ask_about", "leave", "ask", "recommend", "answer_item", "end"]
ConversationMode = Literal["target", "target_free"]
ConversationOutcome = Literal["success", "abandoned", "left", "ended_by_agent", "failed"]
#: How each outcome reads, and what decides it (see recworld.agents.conversation).
OUTCOME_LABELS: dict[str, str] = {
    "success": "the user accepted what they were looking for",
    "abandoned": "the user's patience ran out (turn budget)",
    "left": "the user left the conversation and the session (the user model's leave)",
    "ended_by_agent": "the agent ended the conversation",
    "failed": "the agent could not go on (a tool or its model failed)",
}


class TurnPayload(Payload):
    """CONVERSE: one turn of a conversation (text = the utterance; value = turn number).

    Attributes:
        conversation: the conversation's id in the run.
        turn: 0, 1, ... within the conversation (user and agent turns alternate).
        role: ``user`` or ``agent``.
        act: what the turn does (:data:`TurnAct`).
        items: item ids the turn mentions (recommended, accepted, rejected, asked about).
        attribute: the attribute asked about or answered (``genre``, ``era``, ``popularity``).
        value: the answer's value (e.g. ``comedy``), or a rejection's reason code.
        tools: tool calls the agent made for this turn (``search``, ``rank:linucb``, ``facts``).
        by: who wrote the text.
    """

    omit_none: ClassVar[tuple[str, ...]] = ("attribute", "value")

    conversation: int
    turn: int
    role: Role
    act: TurnAct
    items: list[int] = []
    attribute: str | None = None
    value: str | None = None
    tools: list[str] = []
    by: Author = "template"


class ConversationEndPayload(Payload):
    """CONVERSATION_END: how a conversation ended (value = turns; item = the accepted item that made it a success).

    Attributes:
        conversation: the conversation's id.
        outcome: :data:`ConversationOutcome`.
        mode: ``target`` (a hidden target item) or ``target_free`` (a hidden
            taste the user discovers; success = any accepted item).
        agent: the conversational agent's name.
        target: the hidden target item (target mode).
        reference: the items the recall is measured against: the target, or
            in target-free mode the user's top items under the user model.
        recommended: per recommendation turn (in order), the items offered.
        accepted: items the user accepted (watched).
        success_turn: the turn of success, if any.
        errors: tool or model failures the agent recovered from.
    """

    conversation: int
    outcome: ConversationOutcome
    mode: ConversationMode
    agent: str
    target: int | None = None
    reference: list[int] = []
    recommended: list[list[int]] = []
    accepted: list[int] = []
    success_turn: int | None = None
    errors: int = 0


PAYLOADS: dict[EventType, type[Payload]] = {
    EventType.LEAVE: LeavePayload,
    EventType.FEELING: AuthoredPayload,
    EventType.INSTRUCTION: AuthoredPayload,
    EventType.POST: PostPayload,
    EventType.SOCIAL_WATCH: SocialWatchPayload,
    EventType.CHAT: ChatPayload,
    EventType.SEARCH: SearchPayload,
    EventType.CONVERSE: TurnPayload,
    EventType.CONVERSATION_END: ConversationEndPayload,
}

#: One stored dict per leave reason (shared: the world writes one per session end).
LEAVE_PAYLOADS: tuple[dict[str, Any], ...] = tuple(LeavePayload(reason=r).dump() for r in LEAVE_REASONS)


def json_fragment(key: str, value: Any) -> str:
    """``"key": value`` exactly as it appears in a stored payload (for SQL ``LIKE`` filters)."""
    return json.dumps({key: value})[1:-1]


__all__ = [
    "LEAVE_PAYLOADS",
    "LEAVE_REASONS",
    "LEAVE_REASON_LABELS",
    "PAYLOADS",
    "Author",
    "AuthoredPayload",
    "ChatPayload",
    "ConversationEndPayload",
    "ConversationMode",
    "ConversationOutcome",
    "OUTCOME_LABELS",
    "Role",
    "SearchIntent",
    "SearchPayload",
    "TurnAct",
    "TurnPayload",
    "LeavePayload",
    "LeaveReason",
    "Payload",
    "PostPayload",
    "SocialWatchPayload",
    "json_fragment",
]
