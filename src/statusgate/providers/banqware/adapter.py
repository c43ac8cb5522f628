"""The banqware PSD2 Hub adapter.

Three callback shapes, told apart by an identifying key plus at least one key of its
content: a PIS payment (``paymentId`` + ``paymentStatus``), a first transactions page
(``accountId`` + ``transactionsCount`` or ``transactionStatus``) and a session stage or
status change (``sessionId`` + ``stage`` or ``status``). Anything else is of an unknown
shape; a recognised shape whose content is unusable is an invalid payload.

Decisions the tables leave open:

- ``provider_state`` is the status word as sent ("Finished", "AuthorizationFailed"); the
  stage is already in ``stage``. A payment's is its paymentStatus as sent ("3",
  "Completed"). ``error.provider_code`` is the canonical word ("NotSupported").
- A session's final stage is the source's ``final_stage``, and accounts use it too. A
  client may run stages past it (TransactionDetails after Transactions): a later stage
  only starts once the final one finished, so any update past the final stage is
  ``ready_to_fetch``, and Finished there is terminal as well. Normally the final stage's
  own Finished already made the subject terminal and those later callbacks change
  nothing; when that callback was lost, they still bring the subject to its end.
- Accounts in ``details`` are COMPLETED at ACCOUNTS. When the callback reports a later
  stage Finished and still lists them, they are COMPLETED at that stage: the session
  finished it for every account, and this is the only way an account reaches its final
  stage, as banqware sends nothing per account when its transactions are done.
- An account is named by ``accountId`` when the details entry has one (undocumented, but
  it is what names accounts in the first-transactions-page callback), otherwise by its
  account number in compact form.
- The callbacks carry no "2/3 accounts" count. When Accounts finished, the session's
  progress is the number of accounts listed, out of the same number.
- A first transactions page arrives once per transaction status, so its attributes are
  keyed by it (``transactions_count_booked``, ``transactions_count_pending``) and the
  booked and pending callbacks accumulate instead of hiding each other.
- banqware documents no time in its callbacks, so ``occurred_at`` stays unset.
"""

from __future__ import annotations

from typing import ClassVar

from statusgate.config import SourceConfig
from statusgate.core.names import ResourceName
from statusgate.providers.banqware.config import BanqwareSource
from statusgate.providers.banqware.mapping import PAYMENT_STATUSES, SESSION_STATUSES, STAGES
from statusgate.providers.banqware.payloads import (
    Account,
    Bank,
    PaymentCallback,
    SessionCallback,
    SessionFields,
    TransactionsPageCallback,
    Word,
)
from statusgate.providers.base import JSONObject, UnknownShapeError
from statusgate.providers.common import (
    build_status,
    child_name,
    mask_account_number,
    parse,
    subject_name,
)
from statusgate.v1.status_pb2 import Provider, Stage, State, Status

_BANQWARE = Provider.PROVIDER_BANQWARE


class BanqwareAdapter:
    provider: ClassVar[Provider.ValueType] = _BANQWARE

    def normalize(
        self, source: SourceConfig, payload: JSONObject, *, path: str = ""
    ) -> list[Status]:
        if not isinstance(source, BanqwareSource):
            raise TypeError(f"the banqware adapter got a {source.provider} source")
        if not isinstance(payload, dict):
            raise UnknownShapeError("a banqware callback is a JSON object")
        mapper = _Mapper(source)
        if "paymentId" in payload and "paymentStatus" in payload:
            return [mapper.payment(parse(PaymentCallback, payload, "banqware payment callback"))]
        if "accountId" in payload and (
            "transactionsCount" in payload or "transactionStatus" in payload
        ):
            label = "banqware first-transactions-page"
            return mapper.transactions_page(parse(TransactionsPageCallback, payload, label))
        if "sessionId" in payload and ("stage" in payload or "status" in payload):
            session = parse(SessionCallback, payload, "banqware session callback")
            return mapper.session(session, session.stage, session.status)
        raise UnknownShapeError(
            "not a banqware callback: expected paymentId and paymentStatus (payment), "
            "accountId and transactionsCount or transactionStatus (first transactions "
            "page), or sessionId and stage or status (session)"
        )


def session_updates(
    source: BanqwareSource, callback: SessionCallback, *, progress: tuple[int, int] | None
) -> list[Status]:
    """A session callback's updates, with the session's ``progress`` when it is known."""
    return _Mapper(source).session(callback, callback.stage, callback.status, progress=progress)


def _progression(
    stage: Stage.ValueType, state: State.ValueType, final_stage: Stage.ValueType
) -> tuple[Stage.ValueType, bool]:
    """The final stage to judge an update by, and whether its data is ready to fetch.

    Stage enum numbers follow banqware's flow order, so they compare directly.
    """
    if stage > final_stage:
        return stage, True
    return final_stage, stage == final_stage and state == State.STATE_COMPLETED


class _Mapper:
    def __init__(self, source: BanqwareSource) -> None:
        self.source = source.id
        self.final_stage = STAGES[source.final_stage]

    def session(
        self,
        fields: SessionFields,
        stage_word: Word,
        status_word: Word,
        *,
        progress: tuple[int, int] | None = None,
    ) -> list[Status]:
        """The session, then the accounts listed in its ``details``; ``progress`` is the
        session's when its count is known (a status answer may say it)."""
        name = subject_name(self.source, "sessions", fields.session_id)
        outcome = SESSION_STATUSES[status_word.name].at(STAGES[stage_word.name])
        final_stage, ready = _progression(outcome.stage, outcome.state, self.final_stage)
        accounts = self._listed_accounts(name, fields.details or [], outcome.stage, outcome.state)
        listed = len(accounts)
        accounts_finished = (
            outcome.stage == Stage.STAGE_ACCOUNTS and outcome.state == State.STATE_COMPLETED
        )
        if progress is None and listed and accounts_finished:
            progress = (listed, listed)
        session = build_status(
            name,
            _BANQWARE,
            outcome.state,
            outcome.stage,
            final_stage=final_stage,
            provider_state=status_word.raw,
            error=outcome.error(status_word.name, f"{status_word.name} at stage {stage_word.name}"),
            progress=progress,
            ready_to_fetch=ready,
            attributes=_session_attributes(fields),
        )
        return [session, *accounts]

    def transactions_page(self, page: TransactionsPageCallback) -> list[Status]:
        # The session fields ride along; when they say where the session is, use them.
        if page.stage is not None and page.status is not None:
            updates = self.session(page, page.stage, page.status)
        else:
            session_name = subject_name(self.source, "sessions", page.session_id)
            updates = self._listed_accounts(
                session_name, page.details or [], Stage.STAGE_ACCOUNTS, State.STATE_COMPLETED
            )
        suffix = f"_{page.transaction_status}" if page.transaction_status else ""
        count = page.transactions_count
        stage, state = Stage.STAGE_TRANSACTIONS, State.STATE_IN_PROGRESS
        final_stage, ready = _progression(stage, state, self.final_stage)
        account = build_status(
            subject_name(self.source, "sessions", page.session_id, "accounts", page.account_id),
            _BANQWARE,
            state,
            stage,
            final_stage=final_stage,
            progress=None if count is None else (count, 0),
            ready_to_fetch=ready,
            attributes={
                f"transactions_count{suffix}": None if count is None else str(count),
                f"earliest_accounting_date{suffix}": page.earliest_accounting_date,
                f"earliest_effective_date{suffix}": page.earliest_effective_date,
                f"latest_accounting_date{suffix}": page.latest_accounting_date,
                f"latest_effective_date{suffix}": page.latest_effective_date,
            },
        )
        return [*updates, account]

    def payment(self, payment: PaymentCallback) -> Status:
        word = payment.payment_status
        outcome = PAYMENT_STATUSES[word.name]
        return build_status(
            subject_name(self.source, "payments", payment.payment_id),
            _BANQWARE,
            outcome.state,
            Stage.STAGE_PAYMENT,
            final_stage=Stage.STAGE_PAYMENT,
            provider_state=word.raw,
            error=outcome.error(word.name, "the bank does not support this payment"),
            attributes={
                "payment_external_id": payment.payment_external_id,
                "user_external_id": payment.user.external_id if payment.user else None,
                "bank_id": _bank_id(payment.bank_id, payment.bank),
            },
        )

    def _listed_accounts(
        self,
        session: ResourceName,
        accounts: list[Account],
        session_stage: Stage.ValueType,
        session_state: State.ValueType,
    ) -> list[Status]:
        stage = Stage.STAGE_ACCOUNTS
        if session_state == State.STATE_COMPLETED and session_stage > stage:
            stage = session_stage
        final_stage, ready = _progression(stage, State.STATE_COMPLETED, self.final_stage)
        statuses: dict[str, Status] = {}
        for account in accounts:
            account_key = account.account_id or account.account_number
            if account_key in statuses:
                continue
            statuses[account_key] = build_status(
                child_name(session, "accounts", account_key),
                _BANQWARE,
                State.STATE_COMPLETED,
                stage,
                final_stage=final_stage,
                ready_to_fetch=ready,
                attributes={
                    "account_number": mask_account_number(account.account_number),
                    "account_type": account.account_type,
                    "account_relation": ",".join(account.account_relation),
                    "manual_account_relation": account.manual_account_relation,
                },
            )
        return list(statuses.values())


def _bank_id(bank_id: str | None, bank: Bank | None) -> str | None:
    return bank_id or (bank.id if bank else None)


def _session_attributes(fields: SessionFields) -> dict[str, str | None]:
    bank = fields.bank
    identifiers = bank.secondary_identifiers if bank else []
    return {
        "bank_id": _bank_id(fields.bank_id, bank),
        "bank_secondary_identifiers": ",".join(
            f"{i.type}={i.value}" for i in identifiers if i.type and i.value
        ),
        "session_external_id": fields.session_external_id,
        "user_id": fields.user_id,
        "is_sca": None if fields.is_sca is None else str(fields.is_sca).lower(),
    }
