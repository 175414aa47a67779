"""Declared entity types: how a table's rows appear on the streams, and how their writes
record activities in the writing transaction.

A declaration names the type, its model (or table), its scope (which attributes hold
the organization and project, or public) and its JSON shape. From it come the
activity of every create, update and delete, written by :func:`record` (explicitly, in
any SQLAlchemy ``Session`` of the application) or by the session events installed
here (automatically, for declared ORM models: a flush that writes a declared row
also writes its activity, so an ORM write cannot forget it).

The activity row is appended in the same transaction through ``activities.log.append``,
which takes the ordering lock on PostgreSQL: commit order stays ID order whoever writes.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Table, event, inspect
from sqlalchemy.orm import ORMExecuteState, Session, attributes, object_session

from syncstream.activities import log
from syncstream.activities.model import Action, NewActivity
from syncstream.activities.writer import RECORDED_KEY

logger = logging.getLogger("syncstream.entities")

ScopeKind = Literal["organization", "public"]
#: ``Tx`` as the API echoes it: ``{"transactionId", "sourceId", "changedField"}``.
TxMeta = Mapping[str, object]
Shape = Callable[[Any], object]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True, slots=True)
class Scope:
    """Where an entity lives: in an organization (and maybe one of its projects), or public.

    ``organization`` and ``project`` name the row's attributes that hold the IDs.
    """

    kind: ScopeKind
    organization: str | None = None
    project: str | None = None


def in_organization(organization: str = "organization_id") -> Scope:
    """Rows that belong to an organization: readable by its members."""
    return Scope("organization", organization, None)


def in_project(organization: str = "organization_id", project: str = "project_id") -> Scope:
    """Rows of an organization that may sit in one of its projects (``project`` None: the
    whole organization): readable by whoever may read that project."""
    return Scope("organization", organization, project)


def public() -> Scope:
    """Rows everyone may read; their activities never echo ``tx`` (it would reveal the writer)."""
    return Scope("public")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@dataclass(frozen=True, slots=True)
class EntityType:
    """One declared entity type. Made by ``Syncstream.entity``; immutable."""

    name: str
    table: Table
    scope: Scope
    shape: Shape
    model: type[Any] | None = None
    #: Attributes whose change alone is no change (``updated_at``): no activity, no key.
    untracked: frozenset[str] = frozenset()
    #: Attribute → the key ``changedKeys`` names (default: camelCase of the attribute).
    keys: Mapping[str, str] = field(default_factory=dict)
    #: The attribute holding the row's ID (the table's one-column primary key).
    id_attribute: str = "id"

    @property
    def public(self) -> bool:
        return self.scope.kind == "public"

    @property
    def events(self) -> tuple[str, str, str]:
        return (f"{self.name}.created", f"{self.name}.updated", f"{self.name}.deleted")

    def locate(self, row: Any) -> tuple[str | None, str | None]:
        """The (organization, project) a row lives in."""
        scope = self.scope
        org = None if scope.organization is None else getattr(row, scope.organization)
        project = None if scope.project is None else getattr(row, scope.project)
        return org, project

    def key_of(self, attribute: str) -> str:
        return self.keys.get(attribute) or _camel(attribute)

    def idempotency_key(self, user_id: str | None, organization_id: str | None, transaction_id: str) -> str:
        """The key that makes a create with this ``transactionId`` happen once: scoped to
        (user, organization, type), so two users never collide."""
        return f"{user_id}:{organization_id or '-'}:{self.name}:{transaction_id}"

    def activity(
        self,
        action: Action,
        row: Any,
        *,
        user_id: str | None = None,
        tx: TxMeta | None = None,
        changed_keys: list[str] | None = None,
        data: object | None = None,
    ) -> NewActivity:
        """The activity of one change of ``row``; ``data`` defaults to its shape now (pass
        the shape taken before a delete when the row is gone)."""
        org, project = self.locate(row)
        key = None
        if action == "create" and tx is not None and tx.get("transactionId"):
            key = self.idempotency_key(user_id, org, str(tx["transactionId"]))
        return NewActivity(
            action=action,
            entity_type=self.name,
            entity_id=str(getattr(row, self.id_attribute)),
            organization_id=org,
            project_id=project,
            user_id=user_id,
            data=self.shape(row) if data is None else data,
            changed_keys=changed_keys if action == "update" else None,
            tx=None if self.public or tx is None else dict(tx),
            idempotency_key=key,
        )


def id_attribute(name: str, table: Table) -> str:
    """The attribute of a row that holds its ID: the one column of the primary key."""
    primary = list(table.primary_key.columns)
    if len(primary) != 1:
        raise TypeError(f"entity type {name!r}: its table needs a one-column primary key")
    return primary[0].key


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(f"entity type name {name!r}: lowercase letters, digits and _, at most 32")


# -- writes ---------------------------------------------------------------------------------------

#: ``session.info`` keys: the write's context (who, which tx) and what it recorded.
CONTEXT_KEY = "syncstream.context"
_PENDING_KEY = "syncstream.pending"
_DELETING_KEY = "syncstream.deleting"

#: Told, after the commit of a session that recorded activities, what it recorded and
#: the newest ID: rings the doorbell (and clears caches) of the instance that declared them.
CommitHook = Callable[[list[NewActivity], int], None]


@dataclass(frozen=True, slots=True)
class WriteContext:
    user_id: str | None = None
    tx: TxMeta | None = None


def set_context(session: Any, *, user_id: str | None = None, tx: TxMeta | None = None) -> None:
    """Who writes in ``session`` (an ORM ``Session`` or ``AsyncSession``) and the client's
    ``tx``: the activities it records from now on carry them."""
    session.info[CONTEXT_KEY] = WriteContext(user_id, tx)


def _context(session: Session) -> WriteContext:
    found = session.info.get(CONTEXT_KEY)
    return found if isinstance(found, WriteContext) else WriteContext()


def record(
    session: Session,
    entity: EntityType,
    action: Action,
    row: Any,
    *,
    hook: CommitHook | None,
    changed_keys: list[str] | None = None,
    data: object | None = None,
    user_id: str | None = None,
    tx: TxMeta | None = None,
) -> int:
    """Append the activity of one change of ``row`` in ``session``'s transaction; its ID."""
    context = _context(session)
    new = entity.activity(
        action,
        row,
        user_id=user_id if user_id is not None else context.user_id,
        tx=tx if tx is not None else context.tx,
        changed_keys=changed_keys,
        data=data,
    )
    activity_id = log.append(session, new)
    if hook is not None:
        recorded: list[tuple[NewActivity, int, CommitHook]] = session.info.setdefault(RECORDED_KEY, [])
        recorded.append((new, activity_id, hook))
    return activity_id


# -- the automatic path: SQLAlchemy session events -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tracked:
    entity: EntityType
    hook: CommitHook


#: Declared ORM models → how to record them. A model belongs to the instance that
#: declared it last (one per process in an application).
_TRACKED: dict[type[Any], Tracked] = {}


def track(model: type[Any], entity: EntityType, hook: CommitHook) -> None:
    if model not in _TRACKED:
        # Rows the unit of work deletes on its own (delete-orphan cascades) are in no
        # ``session.deleted`` before the flush: the mapper tells us as it deletes them.
        event.listen(model, "after_delete", _after_delete)
    _TRACKED[model] = Tracked(entity, hook)
    _install_listeners()


def _tracked(obj: object) -> Tracked | None:
    return _TRACKED.get(type(obj)) if _TRACKED else None


def changed_attributes(entity: EntityType, obj: object) -> list[str]:
    """The tracked column attributes of ``obj`` whose value this flush changes, in mapper order."""
    state = inspect(obj)
    changed = []
    for prop in state.mapper.column_attrs:
        key = prop.key
        if key in entity.untracked:
            continue
        history = attributes.get_history(obj, key)
        if history.added and list(history.added) != list(history.deleted or ()):
            changed.append(key)
    return changed


def _before_flush(session: Session, _context: object, _instances: object) -> None:
    pending: list[tuple[Tracked, Action, object, list[str] | None, object | None]] = []
    for obj in session.new:
        if (tracked := _tracked(obj)) is not None:
            pending.append((tracked, "create", obj, None, None))
    for obj in session.dirty:
        if (tracked := _tracked(obj)) is not None and session.is_modified(obj, include_collections=False):
            changed = changed_attributes(tracked.entity, obj)
            if changed:  # only untracked attributes moved, or values set to what they were
                keys = [tracked.entity.key_of(a) for a in changed]
                pending.append((tracked, "update", obj, keys, None))
    for obj in session.deleted:
        if (tracked := _tracked(obj)) is not None:
            # Shaped now: after the flush the row is gone and its relations may be too.
            pending.append((tracked, "delete", obj, None, tracked.entity.shape(obj)))
    if pending:
        session.info.setdefault(_PENDING_KEY, []).extend(pending)
        deleted = session.info.setdefault(_DELETING_KEY, set())
        deleted.update(id(item[2]) for item in pending if item[1] == "delete")


def _after_delete(_mapper: object, _connection: object, target: object) -> None:
    """A row of a declared model deleted by this flush: recorded unless it was pending."""
    session = object_session(target)
    tracked = _tracked(target)
    if session is None or tracked is None:
        return
    deleting: set[int] = session.info.setdefault(_DELETING_KEY, set())
    if id(target) not in deleting:
        deleting.add(id(target))
        pending = session.info.setdefault(_PENDING_KEY, [])
        pending.append((tracked, "delete", target, None, tracked.entity.shape(target)))


def _after_flush(session: Session, _context: object) -> None:
    session.info.pop(_DELETING_KEY, None)
    pending = session.info.pop(_PENDING_KEY, None)
    for tracked, action, obj, keys, data in pending or ():
        # After the flush: primary keys and defaults are there, and the row is written
        # before its activity (which takes the ordering lock on PostgreSQL).
        record(session, tracked.entity, action, obj, hook=tracked.hook, changed_keys=keys, data=data)


def _after_commit(session: Session) -> None:
    recorded = session.info.pop(RECORDED_KEY, None)
    session.info.pop(CONTEXT_KEY, None)
    if not recorded:
        return
    by_hook: dict[CommitHook, list[NewActivity]] = {}
    newest: dict[CommitHook, int] = {}
    for new, activity_id, hook in recorded:
        by_hook.setdefault(hook, []).append(new)
        newest[hook] = max(newest.get(hook, 0), activity_id)
    for hook, news in by_hook.items():
        try:
            hook(news, newest[hook])
        except Exception:  # the write committed: a failed ring costs one poll interval
            logger.exception("after-commit hook failed")


class UnrecordedWriteError(RuntimeError):
    """An ORM bulk INSERT, UPDATE or DELETE of a declared model: the session events never
    see its rows, so it would change them without their activities."""


def _do_orm_execute(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete) or not _TRACKED:
        return
    mapper = state.bind_mapper
    if mapper is None or mapper.class_ not in _TRACKED:
        return
    if state.execution_options.get("syncstream_recorded"):
        return  # the caller records each row itself (sync.record) in this transaction
    name = _TRACKED[mapper.class_].entity.name
    raise UnrecordedWriteError(
        f"a bulk statement on {mapper.class_.__name__} (entity type {name!r}) would change rows without "
        "their activities: change loaded objects instead, or record each row with sync.record(...) and run "
        "the statement with execution_options(syncstream_recorded=True)"
    )


def _after_rollback(session: Session) -> None:
    session.info.pop(RECORDED_KEY, None)
    session.info.pop(_PENDING_KEY, None)
    session.info.pop(_DELETING_KEY, None)


_installed = False


def _install_listeners() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    # On the Session class: every session, AsyncSession's included, in every application
    # of the process. They cost nothing unless a flush involves a declared model.
    event.listen(Session, "before_flush", _before_flush)
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "after_commit", _after_commit)
    event.listen(Session, "after_soft_rollback", lambda s, _t: _after_rollback(s))
    event.listen(Session, "do_orm_execute", _do_orm_execute)


def ring_later(ring: Callable[[list[NewActivity], int], Any]) -> CommitHook:
    """A commit hook that runs the coroutine function ``ring`` on the running event loop
    (an ``AsyncSession`` commits on it), or does nothing off it (the caller rings itself)."""
    tasks: set[asyncio.Task[Any]] = set()

    def hook(news: list[NewActivity], newest: int) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(ring(news, newest))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    return hook


def names_of(entities: Iterable[EntityType]) -> frozenset[str]:
    return frozenset(e.name for e in entities)


def entity_type(
    name: str,
    model: type[Any] | Table,
    *,
    scope: Scope,
    shape: Shape,
    untracked: Iterable[str] = (),
    keys: Mapping[str, str] | None = None,
) -> EntityType:
    """An entity type, not yet declared anywhere (see :meth:`Syncstream.add`): ``name``
    (lowercase, the stream's ``entityType``), its model or table, scope and JSON shape."""
    check_name(name)
    table = model if isinstance(model, Table) else model.__table__
    return EntityType(
        name=name,
        table=table,
        scope=scope,
        shape=shape,
        model=None if isinstance(model, Table) else model,
        untracked=frozenset(untracked),
        keys=dict(keys or {}),
        id_attribute=id_attribute(name, table),
    )
