"""The provider toolkit: what every adapter uses to turn provider values into canonical
statuses.

- **Statuses**: ``build_status`` is the one place an adapter makes a ``Status``, and so
  the one place its terminality is decided (by ``core.states.is_terminal``).
- **Outcomes and tables**: a provider word stands for an ``Outcome`` (a state, maybe a
  stage and an error, readiness); a ``Table`` holds a vocabulary of such words, matches
  them the way the provider varies them, and refuses an unknown one in one message
  format that names where it was and which words are accepted.
- **Payload values**: pydantic models over ``Payload``, ids checked against the rule of
  resource names, text made storable, provider times made UTC, attribute values read
  best-effort.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, PlainValidator, ValidationError

from statusgate.core.names import InvalidNameError, ResourceName, is_valid_id, make_name
from statusgate.core.states import is_terminal
from statusgate.providers.base import InvalidPayloadError
from statusgate.v1.status_pb2 import ErrorReason, Provider, Stage, State, Status, StatusError

T = TypeVar("T")
PayloadT = TypeVar("PayloadT", bound="Payload")

INT64_MAX = 2**63 - 1
# How much of a provider's text a message may carry (a refusal, an error's message).
MESSAGE_LIMIT = 1024


# --- statuses -------------------------------------------------------------------------


def build_status(
    name: ResourceName,
    provider: Provider.ValueType,
    state: State.ValueType,
    stage: Stage.ValueType = Stage.STAGE_UNSPECIFIED,
    *,
    final_stage: Stage.ValueType | None,
    open_ended: bool = False,
    provider_state: str = "",
    error: StatusError | None = None,
    progress: tuple[int, int] | None = None,
    ready_to_fetch: bool = False,
    occurred_at: datetime | None = None,
    attributes: Mapping[str, str | None] | None = None,
) -> Status:
    """One canonical update. ``final_stage`` is the stage at which success ends the
    subject's flow (None: success never does); ``open_ended`` subjects are never ended,
    not even by a failure (a FinBox entity outlives every attempt made under it). Empty
    attribute values are dropped."""
    status = Status(
        name=str(name),  # ids are valid UTF-8: core.names refuses lone surrogates
        source=name.source,
        provider=provider,
        kind=name.kind,
        parent=name.parent,
        state=state,
        stage=stage,
        terminal=not open_ended and is_terminal(name.kind, state, stage, final_stage),
        provider_state=utf8(provider_state),
        ready_to_fetch=ready_to_fetch,
    )
    if error is not None:
        status.error.CopyFrom(error)
    if progress is not None:
        status.progress.done, status.progress.total = progress
    if occurred_at is not None:
        status.occurred_at.FromDatetime(occurred_at)
    for key, value in (attributes or {}).items():
        if value:
            status.attributes[utf8(key)] = utf8(value)
    return status


def status_error(
    reason: ErrorReason.ValueType,
    provider_code: str = "",
    message: str = "",
    *,
    retryable: bool = False,
) -> StatusError:
    """An error with the provider's code and message, made storable (see ``utf8``)."""
    return StatusError(
        reason=reason,
        provider_code=utf8(provider_code),
        message=utf8(message),
        retryable=retryable,
    )


def subject_name(source_id: str, *collection_ids: str) -> ResourceName:
    """``make_name``, refusing as an invalid payload: the ids come from the provider."""
    try:
        return make_name(source_id, *collection_ids)
    except InvalidNameError as error:
        raise InvalidPayloadError(_unnamed(error)) from None


def child_name(parent: ResourceName, collection: str, id_: str) -> ResourceName:
    try:
        return parent.child(collection, id_)
    except InvalidNameError as error:
        raise InvalidPayloadError(_unnamed(error)) from None


def _unnamed(error: InvalidNameError) -> str:
    return f"cannot name the subject: {capped(str(error), MESSAGE_LIMIT)}"


# --- outcomes and tables --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a provider word means canonically: a state, the stage when the word says
    which, an error reason when it is a failure with one (and whether another attempt
    may succeed), and whether the subject's data can be fetched."""

    state: State.ValueType
    stage: Stage.ValueType = Stage.STAGE_UNSPECIFIED
    reason: ErrorReason.ValueType = ErrorReason.ERROR_REASON_UNSPECIFIED
    retryable: bool = False
    ready_to_fetch: bool = False

    def at(self, stage: Stage.ValueType) -> Outcome:
        """The same outcome at ``stage`` (for providers that send the stage apart)."""
        return replace(self, stage=stage)

    def error(self, provider_code: str = "", message: str = "") -> StatusError | None:
        """The outcome's error with the provider's code and message; None without a
        reason."""
        if self.reason == ErrorReason.ERROR_REASON_UNSPECIFIED:
            return None
        return status_error(self.reason, provider_code, message, retryable=self.retryable)


@dataclass(frozen=True, slots=True)
class Folding:
    """How a provider varies its words: ``fold`` brings a word and a table's words to
    the form they are compared in; ``note`` says so when a word is refused."""

    fold: Callable[[str], str]
    note: str = ""


EXACT = Folding(lambda word: word)
ANY_CASE = Folding(lambda word: word.strip().upper(), "any case")
ANY_CASE_AND_SPACING = Folding(
    lambda word: " ".join(word.replace("_", " ").split()).lower(), "any case, '_' as a space"
)
ANY_CASE_AND_SEPARATORS = Folding(
    lambda word: word.casefold().replace("_", "").replace("-", "").replace(" ", ""),
    "any case, with or without '_', '-' and spaces",
)


class Table(Mapping[str, T]):
    """A provider's vocabulary: each word as the provider documents it, and what it
    stands for. As a mapping it holds the documented words; ``word``, ``find`` and
    ``lookup`` match a word the way ``folding`` allows.

    ``numbers``: words that may also arrive as their number in the provider's enum.
    """

    def __init__(
        self,
        vocabulary: str,
        entries: Mapping[str, T],
        folding: Folding = EXACT,
        *,
        numbers: Mapping[int, str] | None = None,
    ) -> None:
        self.vocabulary = vocabulary
        self._entries = dict(entries)
        self._folding = folding
        self._words = {folding.fold(word): word for word in self._entries}
        if len(self._words) != len(self._entries):
            raise ValueError(f"{vocabulary}: two words fold to the same form")
        self._numbers = dict(numbers or {})
        if not set(self._numbers.values()) <= set(self._entries):
            raise ValueError(f"{vocabulary}: a number stands for a word not in the table")

    def __getitem__(self, word: str) -> T:
        return self._entries[word]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def word(self, raw: str | int) -> str | None:
        """The documented spelling of ``raw``; None when it is none of the words."""
        if isinstance(raw, int):
            return self._numbers.get(raw)
        if self._numbers:
            raw = raw.strip()
            if raw.isdecimal() and len(raw) < 4:
                return self._numbers.get(int(raw))
        return self._words.get(self._folding.fold(raw))

    def find(self, raw: str | int) -> T | None:
        word = self.word(raw)
        return None if word is None else self._entries[word]

    def lookup(self, raw: str, label: str, path: str) -> T:
        """What ``raw`` (found at ``path`` in the ``label`` payload) stands for; an
        unknown word makes the payload invalid."""
        found = self.find(raw)
        if found is None:
            raise invalid(label, f"{path}: {self.unknown(raw)}")
        return found

    def unknown(self, raw: str | int) -> str:
        """Why ``raw`` is refused: it is not a word of the table, which are these."""
        return f"unknown {self.vocabulary} {shown(raw)}; expected {self.expected()}"

    def expected(self) -> str:
        words = "one of " + ", ".join(self._entries)
        if self._numbers:
            numbers = sorted(self._numbers)
            contiguous = numbers == list(range(numbers[0], numbers[-1] + 1))
            listed = f"{numbers[0]}-{numbers[-1]}" if contiguous else ", ".join(map(str, numbers))
            words = f"{listed} or {words}"
        return f"{words} ({self._folding.note})" if self._folding.note else words


# --- payloads -------------------------------------------------------------------------


class Payload(BaseModel):
    """A provider payload: only the fields the mapping reads are modelled, because
    providers add keys freely."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def parse(model: type[PayloadT], body: object, label: str) -> PayloadT:
    """``body`` as ``model``, or InvalidPayloadError naming every problem."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise InvalidPayloadError.from_validation(label, error) from None


def invalid(label: str, problem: str) -> InvalidPayloadError:
    """A refusal in the shape ``InvalidPayloadError.from_validation`` gives pydantic's:
    ``invalid {label}: {problem}``."""
    return InvalidPayloadError(f"invalid {label}: {problem}")


def shown(value: str | int, limit: int = 40) -> str:
    """A provider value quoted in a message, cut short (messages are logged and
    returned to the sender)."""
    if isinstance(value, int):
        return str(value) if abs(value) < 10**limit else f"a number of over {limit} digits"
    return repr(value if len(value) <= limit else value[:limit] + "...")


def capped(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- ids --------------------------------------------------------------------------------


def provider_id(value: str) -> str:
    """A pydantic validator: an id that can stand in a resource name. The rule is the
    one of ``core.names`` (``is_valid_id``), stated once."""
    if not is_utf8(value):
        raise ValueError("must be valid Unicode (it contains a lone surrogate)")
    if not is_valid_id(value):
        raise ValueError(
            "must be 1-256 characters without '/' or whitespace, nor control characters"
        )
    return value


# --- text -------------------------------------------------------------------------------


def is_utf8(text: str) -> bool:
    if text.isascii():  # nearly always, and much cheaper than encoding
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def utf8(text: str) -> str:
    """JSON may carry lone surrogates ("\\ud800"), which protobuf strings refuse; a
    provider's free text must never lose the status it describes, so replace them."""
    if is_utf8(text):
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


def loose_text(
    value: object, *, limit: int | None = None, strip: bool = False, max_int: int = INT64_MAX
) -> str | None:
    """A value that only feeds an attribute, read best-effort: text (made storable,
    stripped and cut to ``limit`` when asked) or an integer up to ``max_int`` as text;
    None for anything else, or for nothing left, so that an odd value costs only
    itself."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if abs(value) <= max_int else None
    if isinstance(value, str):
        text = value.strip() if strip else value
        return utf8(text[:limit]) or None
    return None


def mask_account_number(number: str | None) -> str | None:
    """Keep the last four characters: full account numbers never leave an adapter."""
    if not number:
        return None
    if len(number) <= 4:
        return number
    return "X" * (len(number) - 4) + number[-4:]


# --- times ------------------------------------------------------------------------------


def parse_provider_time(value: object) -> datetime | None:
    """Provider timestamps in any of the documented shapes, as aware UTC datetimes.

    ``2025-11-13 06:48:44`` (no zone: UTC), ``2025-11-13 06:48:43.660968+00:00``,
    ``2025-11-13T06:48:43.660968Z``, ``2018-08-14T09:00:55.88`` (short fraction).
    Anything else gives None, whatever its type: a bad timestamp must not lose the
    status.
    """
    if not value or not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # an offset can push year 1 or 9999 out of range
        return None


# Field types of provider payloads.
ProviderId = Annotated[str, AfterValidator(provider_id)]
Text = Annotated[str, AfterValidator(utf8)]
Time = Annotated[datetime | None, PlainValidator(parse_provider_time)]
