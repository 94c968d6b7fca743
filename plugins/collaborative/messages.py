"""Notes and threaded comments with @mentions on any record, like Odoo's chatter.

A message belongs to a record named by ``(record_type, record_id)``. A *note* is internal: only
the people it mentions are told. A *comment* also reaches the record's followers. Replies hang
under a top-level message (one level of threading).

Mentions are written in the body as ``@[Label](user:ID)`` or ``@[Label](team:ID)`` (the
autocomplete inserts them); API clients may add more as ``"user:5"`` / ``"team:2"``. Each
mentioned user (directly, or as a member of a mentioned team) and then each follower gets ONE
notification per message: they share the key ``message:<id>``. Mentioned users who may not see
the record are told nothing and are reported back to the author.

Every read goes through the record rules of the record a message belongs to.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from markupsafe import Markup, escape
from sqlalchemy import ColumnElement, exists, false, or_, select, true
from sqlalchemy import delete as sql_delete

from core.db import utcnow
from core.errors import CrmError, Invalid, NotFoundError, StaleVersion
from core.i18n import N_
from core.models import Team, User, UserRole
from core.normalize import search_key
from plugins.collaborative import followers, notify, records, teams
from plugins.collaborative.config import settings
from plugins.collaborative.models import Mention, Message, Notification

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.auth import SignedIn
    from core.records import RecordType
    from core.runtime import Crm

#: Kinds a person may write (``event`` lines are written by the module itself).
WRITABLE_KINDS = ("note", "comment")
MODERATE = "collaborative.message:moderate"
#: ``@[Label](user:5)``: the label is what readers see, the id is what counts.
TOKEN = re.compile(r"@\[([^\[\]\n]{1,200})\]\((user|team):(\d{1,12})\)")
REFERENCE = re.compile(r"(user|team):(\d{1,12})")
MAX_MENTIONS = 50
EXCERPT = 280


class NotAllowed(CrmError):
    """The user may see the message but not change it (not its author, not a moderator)."""


@dataclass(frozen=True)
class Posted:
    """A message just written, who was told, and which mentioned users were not (they may not
    see the record)."""

    message: Message
    notified: list[int] = field(default_factory=list)
    not_notified: list[int] = field(default_factory=list)


@dataclass
class ThreadItem:
    """A top-level message and its replies, oldest reply first."""

    message: Message
    replies: list[Message] = field(default_factory=list)


@dataclass
class Thread:
    """One page of a record's conversation, newest top-level message first.

    ``names`` maps ``user:ID`` and ``team:ID`` to the current names of authors and of
    everyone mentioned; ``next_before`` is the ``before_id`` of the next (older) page.
    """

    items: list[ThreadItem]
    names: dict[str, str]
    next_before: int | None


@dataclass(frozen=True)
class _Mentions:
    users: frozenset[int]
    teams: frozenset[int]


# --- parsing and rendering -------------------------------------------------------------------


def token_for(kind: str, ident: int, label: str) -> str:
    """The mention token the autocomplete inserts for a user or team."""
    clean = " ".join(re.sub(r"[\[\]()\n]", " ", label).split())[:200] or f"{kind}:{ident}"
    return f"@[{clean}]({kind}:{ident})"


def _parse(body: str, extra: Iterable[str]) -> _Mentions:
    """Users and teams mentioned by tokens in ``body`` and by ``extra`` references."""
    users: set[int] = set()
    groups: set[int] = set()
    refs = [(kind, int(ident)) for _, kind, ident in TOKEN.findall(body)]
    for item in extra:
        match = REFERENCE.fullmatch(str(item).strip())
        if match is None:
            raise Invalid({"mentions": f"{item!r} is not 'user:ID' or 'team:ID'"})
        refs.append((match.group(1), int(match.group(2))))
    for kind, ident in refs:
        (users if kind == "user" else groups).add(ident)
    if len(users) + len(groups) > MAX_MENTIONS:
        raise Invalid({"mentions": f"at most {MAX_MENTIONS} people and teams per message"})
    return _Mentions(frozenset(users), frozenset(groups))


def _check_mentions(session: Session, user: SignedIn, mentions: _Mentions) -> None:
    """``Invalid`` on ``mentions`` for unknown or deactivated users and unknown teams; a partner
    contact may mention only the people working on their customers, and no team (without
    saying which ids exist)."""
    if user.scope == "shared" and (
        mentions.teams or not mentions.users <= partner_contacts_reach(session, user.id)
    ):
        raise Invalid({"mentions": "mention only the people working on your customers"})
    problems = []
    if mentions.users:
        active = set(
            session.scalars(select(User.id).where(User.id.in_(mentions.users), User.is_active))
        )
        problems += [f"user:{uid}" for uid in sorted(mentions.users - active)]
    if mentions.teams:
        known = set(session.scalars(select(Team.id).where(Team.id.in_(mentions.teams))))
        problems += [f"team:{tid}" for tid in sorted(mentions.teams - known)]
    if problems:
        raise Invalid({"mentions": f"unknown or inactive: {', '.join(problems)}"})


def plain_text(body: str) -> str:
    """``body`` with mention tokens shown as ``@Label`` (for e-mails and excerpts)."""
    return TOKEN.sub(lambda m: f"@{m.group(1)}", body)


def excerpt(body: str, length: int = EXCERPT) -> str:
    """The first ``length`` characters of the plain text, on one line."""
    text = " ".join(plain_text(body).split())
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


def _lines(text: str) -> Markup:
    return Markup("<br>").join(escape(line) for line in text.split("\n"))


def render_body(message: Message, names: Mapping[str, str] | None = None) -> Markup:
    """The body as HTML: every piece escaped, tokens as ``<span class="mention">@Label</span>``.

    ``names`` (``user:ID`` -> name) gives the current name of whoever is mentioned; the label
    written in the token is the fallback.
    """
    names = names or {}
    parts: list[Markup] = []
    position = 0
    for match in TOKEN.finditer(message.body):
        parts.append(_lines(message.body[position : match.start()]))
        ref = f"{match.group(2)}:{match.group(3)}"
        label = names.get(ref) or match.group(1)
        parts.append(
            Markup('<span class="mention" data-mention="{}">@{}</span>').format(ref, label)
        )
        position = match.end()
    parts.append(_lines(message.body[position:]))
    return Markup("").join(parts)


# --- validation ------------------------------------------------------------------------------


def _clean_body(crm: Crm, body: str | None) -> str:
    text = (body or "").strip()
    if not text:
        raise Invalid({"body": "write something"})
    limit = settings(crm)["max_message_length"]
    if len(text) > limit:
        raise Invalid({"body": f"at most {limit} characters (this one has {len(text)})"})
    return text


def _notes_rule(user: SignedIn) -> ColumnElement[bool] | None:
    """A partner contact (scope ``shared``) reads no internal notes of the staff: only their
    own and those mentioning them. ``None`` for everyone else."""
    if user.scope != "shared":
        return None
    return or_(
        Message.kind != "note",
        Message.author_id == user.id,
        Message.id.in_(select(Mention.message_id).where(Mention.user_id == user.id)),
    )


def get(crm: Crm, session: Session, user: SignedIn, message_id: int) -> Message:
    """One message: if ``user`` may see its record (and read it); ``NotFoundError`` otherwise."""
    query = select(Message).where(Message.id == message_id)
    for rule in (
        records.visible_condition(crm, user, Message.record_type, Message.record_id),
        _notes_rule(user),
    ):
        if rule is not None:
            query = query.where(rule)
    message = session.scalar(query)
    if message is None:
        raise NotFoundError(f"message {message_id} not found")
    return message


def may_change(user: SignedIn, message: Message) -> bool:
    """Whether ``user`` may edit or delete ``message``: its author, or a moderator (only
    moderators touch the event lines the module writes itself)."""
    if MODERATE in user.permissions:
        return True
    return message.kind in WRITABLE_KINDS and message.author_id == user.id


# --- notifications ---------------------------------------------------------------------------


def _mentioned_users(session: Session, mentions: _Mentions) -> list[int]:
    """Users mentioned directly, then members of mentioned teams, without repeats."""
    found = dict.fromkeys(sorted(mentions.users))
    for team_id in sorted(mentions.teams):
        found.update(dict.fromkeys(teams.member_ids(session, team_id)))
    return list(found)


def _subject(
    kind: RecordType, title: str, message: Message, key: str, what: str, user: SignedIn
) -> notify.Subject:
    return notify.Subject(
        key=key,
        kind=what,
        label=N_("mentioned you") if what == "mention" else N_("commented"),
        title=title,
        body=excerpt(message.body),
        url=f"{kind.link(message.record_id)}#message-{message.id}",
        record_type=message.record_type,
        record_id=message.record_id,
        customer_id=message.customer_id,
        actor_id=user.id,
    )


def _tell(
    crm: Crm,
    session: Session,
    user: SignedIn,
    kind: RecordType,
    message: Message,
    mentions: _Mentions,
    key: str,
    *,
    followers_too: bool,
) -> tuple[list[int], list[int]]:
    """Notify mentioned users (then followers); make visible mentioned users follow the
    record. Return (notified, mentioned users who may not see the record)."""
    title = records.title_of(session, kind, message.record_id) or ""
    mention = _subject(kind, title, message, key, "mention", user)
    mentioned = [uid for uid in _mentioned_users(session, mentions) if uid != user.id]
    blind = [uid for uid in mentioned if not notify.may_see(crm, session, uid, mention)]
    seeing = [uid for uid in mentioned if uid not in blind]
    for uid in sorted(mentions.users):
        if uid in seeing:
            followers.follow(session, message.record_type, message.record_id, uid, "mentioned")
    told = notify.notify(crm, session, seeing, mention)
    if followers_too:
        comment = _subject(kind, title, message, key, "comment", user)
        audience = followers.follower_ids(session, message.record_type, message.record_id)
        told += notify.notify(crm, session, [u for u in audience if u not in seeing], comment)
    return told, blind


def _store_mentions(session: Session, message: Message, mentions: _Mentions) -> None:
    session.execute(sql_delete(Mention).where(Mention.message_id == message.id))
    session.add_all(Mention(message_id=message.id, user_id=uid) for uid in sorted(mentions.users))
    session.add_all(Mention(message_id=message.id, team_id=tid) for tid in sorted(mentions.teams))


def _stored_mentions(session: Session, message_id: int) -> _Mentions:
    rows = session.execute(
        select(Mention.user_id, Mention.team_id).where(Mention.message_id == message_id)
    ).all()
    return _Mentions(
        frozenset(r.user_id for r in rows if r.user_id is not None),
        frozenset(r.team_id for r in rows if r.team_id is not None),
    )


# --- writing ---------------------------------------------------------------------------------


def post(
    crm: Crm,
    session: Session,
    user: SignedIn,
    record_type: str,
    record_id: int,
    body: str,
    *,
    kind: str = "comment",
    parent_id: int | None = None,
    mentions: Iterable[str] = (),
) -> Posted:
    """Write a note or a comment on a record ``user`` may see, and tell who needs to know.

    ``Invalid`` names the bad field; ``NotFoundError`` when the record is missing or hidden.
    """
    if kind not in WRITABLE_KINDS:
        raise Invalid({"kind": f"one of {', '.join(WRITABLE_KINDS)}"})
    record = records.kind_of(crm, record_type)
    records.require_visible(crm, session, user, record_type, record_id)
    text = _clean_body(crm, body)
    if parent_id is not None:
        parent = session.get(Message, parent_id)
        if parent is None or (parent.record_type, parent.record_id) != (record_type, record_id):
            raise Invalid({"parent_id": f"no message {parent_id} on this record"})
        if parent.parent_id is not None:
            raise Invalid({"parent_id": "reply to the first message of the thread"})
    wanted = _parse(text, mentions)
    _check_mentions(session, user, wanted)
    message = Message(
        record_type=record_type,
        record_id=record_id,
        customer_id=records.customer_of(session, record, record_id),
        parent_id=parent_id,
        author_id=user.id,
        kind=kind,
        body=text,
        created_at=utcnow(),
    )
    session.add(message)
    session.flush()
    _store_mentions(session, message, wanted)
    followers.follow(session, record_type, record_id, user.id, "author")
    told, blind = _tell(
        crm,
        session,
        user,
        record,
        message,
        wanted,
        f"message:{message.id}",
        followers_too=kind == "comment",
    )
    session.flush()
    return Posted(message, told, blind)


def edit(
    crm: Crm, session: Session, user: SignedIn, message_id: int, body: str, version: int
) -> Posted:
    """Change a message's body (its author or a moderator), from the ``version`` read.

    ``StaleVersion`` when someone changed it since; people newly mentioned are told.
    """
    message = get(crm, session, user, message_id)
    if not may_change(user, message):
        raise NotAllowed(f"only the author or a moderator may change message {message_id}")
    if version != message.version:
        raise StaleVersion(message)
    text = _clean_body(crm, body)
    wanted = _parse(text, ())
    _check_mentions(session, user, wanted)
    before = _stored_mentions(session, message.id)
    message.body = text
    message.edited_at = utcnow()
    session.flush()
    _store_mentions(session, message, wanted)
    added = _Mentions(wanted.users - before.users, wanted.teams - before.teams)
    told: list[int] = []
    blind: list[int] = []
    if added.users or added.teams:
        record = records.kind_of(crm, message.record_type)
        key = f"message:{message.id}:v{message.version}"
        told, blind = _tell(crm, session, user, record, message, added, key, followers_too=False)
    session.flush()
    return Posted(message, told, blind)


def delete(crm: Crm, session: Session, user: SignedIn, message_id: int) -> int:
    """Delete a message and its replies (its author or a moderator); return its record id.

    The notifications about them go too: they would point to nothing.
    """
    message = get(crm, session, user, message_id)
    if not may_change(user, message):
        raise NotAllowed(f"only the author or a moderator may delete message {message_id}")
    doomed = [*session.scalars(select(Message).where(Message.parent_id == message.id)), message]
    for item in doomed:
        session.execute(
            sql_delete(Notification).where(
                (Notification.key == f"message:{item.id}")
                | Notification.key.startswith(f"message:{item.id}:v")
            )
        )
        session.execute(sql_delete(Mention).where(Mention.message_id == item.id))
        session.delete(item)
    session.flush()
    return message.record_id


# --- reading ---------------------------------------------------------------------------------


def thread(
    crm: Crm,
    session: Session,
    user: SignedIn,
    record_type: str,
    record_id: int,
    before_id: int | None = None,
    limit: int = 50,
) -> Thread:
    """A page of a record's conversation: top-level messages newest first (older than
    ``before_id``), each with its replies oldest first. ``NotFoundError`` for a hidden record."""
    records.require_visible(crm, session, user, record_type, record_id)
    on_record = [Message.record_type == record_type, Message.record_id == record_id]
    notes = _notes_rule(user)
    if notes is not None:
        on_record.append(notes)
    query = select(Message).where(*on_record, Message.parent_id.is_(None))
    if before_id is not None:
        query = query.where(Message.id < before_id)
    tops = list(session.scalars(query.order_by(Message.id.desc()).limit(limit + 1)))
    next_before = tops[limit - 1].id if len(tops) > limit else None
    tops = tops[:limit]
    replies: dict[int, list[Message]] = {m.id: [] for m in tops}
    if tops:
        for reply in session.scalars(
            select(Message)
            .where(*on_record, Message.parent_id.in_(list(replies)))
            .order_by(Message.id)
        ):
            replies[reply.parent_id].append(reply)  # type: ignore[index]
    every = [*tops, *(r for rs in replies.values() for r in rs)]
    items = [ThreadItem(m, replies[m.id]) for m in tops]
    return Thread(items, names_for(session, every), next_before)


def names_for(session: Session, messages: Iterable[Message]) -> dict[str, str]:
    """Current names of the authors and of everyone mentioned in ``messages``."""
    rows = list(messages)
    user_ids = {m.author_id for m in rows if m.author_id is not None}
    team_ids: set[int] = set()
    for message in rows:
        for _, kind, ident in TOKEN.findall(message.body):
            (user_ids if kind == "user" else team_ids).add(int(ident))
    names: dict[str, str] = {}
    if user_ids:
        for uid, name, email in session.execute(
            select(User.id, User.name, User.email).where(User.id.in_(user_ids))
        ):
            names[f"user:{uid}"] = name or email
    if team_ids:
        for tid, label, name in session.execute(
            select(Team.id, Team.label, Team.name).where(Team.id.in_(team_ids))
        ):
            names[f"team:{tid}"] = label or name
    return names


def mentionables(
    session: Session, q: str, limit: int = 10, among: Collection[int] | None = None
) -> list[dict[str, object]]:
    """Active staff users (not partner contacts only) and teams whose name matches ``q``;
    with ``among``, only those users and no teams (what a partner contact may see).

    Matching ignores case and diacritics (:func:`core.normalize.search_key`): each word of
    ``q`` must start a word of the name (or e-mail), so ``nguyen an`` finds "Nguyễn Văn An".
    """
    words = search_key(q).split()
    staff = exists().where(UserRole.user_id == User.id, UserRole.role != "partner")
    found: list[tuple[int, str, dict[str, object]]] = []
    for uid, name, email in session.execute(
        select(User.id, User.name, User.email).where(User.is_active, staff)
    ):
        if among is not None and uid not in among:
            continue
        label = name or email
        rank = _rank(words, f"{label} {email.split('@')[0]}")
        if rank is not None:
            found.append((rank, search_key(label), _entry("user", uid, label)))
    teams = select(Team.id, Team.name, Team.label).where(true() if among is None else false())
    for tid, team_name, team_label in session.execute(teams):
        label = team_label or team_name
        rank = _rank(words, f"{label} {team_name}")
        if rank is not None:
            found.append((rank, search_key(label), _entry("team", tid, label)))
    found.sort(key=lambda item: (item[0], item[1]))
    return [entry for _, _, entry in found[:limit]]


def _rank(words: list[str], text: str) -> int | None:
    """``None`` when ``text`` does not match; 0 when its key starts with the query, else 1."""
    key = search_key(text)
    parts = key.split()
    if not all(any(p.startswith(w) for p in parts) for w in words):
        return None
    return 0 if key.startswith(" ".join(words)) else 1


def _entry(kind: str, ident: int, label: str) -> dict[str, object]:
    return {"type": kind, "id": ident, "label": label, "token": token_for(kind, ident, label)}


def mentions_of(session: Session, message_ids: Iterable[int]) -> dict[int, list[str]]:
    """``user:ID`` / ``team:ID`` references stored for each message."""
    ids = list(message_ids)
    found: dict[int, list[str]] = {i: [] for i in ids}
    if not ids:
        return found
    for mid, uid, tid in session.execute(
        select(Mention.message_id, Mention.user_id, Mention.team_id)
        .where(Mention.message_id.in_(ids))
        .order_by(Mention.id)
    ):
        found[mid].append(f"user:{uid}" if uid is not None else f"team:{tid}")
    return found


def partner_contacts_reach(session: Session, user_id: int) -> set[int]:
    """Users a partner contact may mention: the account teams and followers of the customers
    shared with them."""
    from plugins.collaborative.models import AccountTeam, Follower, Share

    shared = select(Share.customer_id).where(Share.user_id == user_id)
    account_teams = select(AccountTeam.team_id).where(AccountTeam.customer_id.in_(shared))
    members = {
        uid
        for tid in session.scalars(account_teams.distinct())
        for uid in teams.member_ids(session, tid)
    }
    following = session.scalars(
        select(Follower.user_id).where(
            Follower.record_type == "customer", Follower.record_id.in_(shared)
        )
    )
    return members | set(following)
