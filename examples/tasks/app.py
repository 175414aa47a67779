"""Step 2 and 4 of docs/library.md: the team's app writes with its own session; syncstream is mounted.

Run it: ``SYNCSTREAM_DATABASE_URL=sqlite:///tasks.db uvicorn examples.tasks.app:app``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import JSONResponse

from syncstream import CallerDep

from . import streams  # noqa: F401  (registers the project stream on sync.router)
from .models import Base, Board, Comment, Task, new_id
from .sync import sync

# --8<-- [start:session]
Session = Annotated[AsyncSession, Depends(sync.session)]  # an AsyncSession on the write engine
# --8<-- [end:session]
PROJECT = "/organizations/{org}/projects/{project_id}"


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Tx(Body):
    transactionId: str = Field(min_length=1, max_length=64)
    sourceId: str = Field(min_length=1, max_length=64)
    changedField: str | None = None


class BoardIn(Body):
    name: str = Field(min_length=1, max_length=200)


class TaskIn(Body):
    boardId: str
    title: str = Field(min_length=1, max_length=500)
    tx: Tx | None = None


class TaskPatch(Body):
    title: str | None = Field(default=None, min_length=1, max_length=500)
    done: bool | None = None
    tx: Tx | None = None


class CommentIn(Body):
    body: str = Field(min_length=1, max_length=10_000)
    internal: bool = False


def task_json(t: Task) -> dict[str, Any]:
    return {"id": t.id, "boardId": t.board_id, "title": t.title, "done": t.done}


router = APIRouter()


@router.post(PROJECT + "/boards", status_code=201)
async def create_board(org: str, project_id: str, body: BoardIn, caller: CallerDep, session: Session) -> Any:
    where = await sync.organization_slice(caller, org, project_id)  # 404 unless readable
    board = Board(
        id=new_id("brd"), organization_id=where.organization_id, project_id=project_id, name=body.name
    )
    sync.context(session, user_id=caller.user_id)
    session.add(board)
    await session.commit()  # the board and its activity, one transaction
    return {"id": board.id, "name": board.name}


# --8<-- [start:create_task]
@router.post(PROJECT + "/tasks", status_code=201)
async def create_task(org: str, project_id: str, body: TaskIn, caller: CallerDep, session: Session) -> Any:
    where = await sync.organization_slice(caller, org, project_id)
    tx = body.tx.model_dump() if body.tx else None
    board = await session.get(Board, body.boardId)
    if board is None or board.project_id != project_id:
        raise HTTPException(404, "board not found")
    task = Task(
        id=new_id("tsk"),
        organization_id=where.organization_id,
        project_id=project_id,
        board_id=board.id,
        title=body.title,
    )
    sync.context(session, user_id=caller.user_id, tx=tx)  # who wrote, and the tx to echo
    session.add(task)
    try:
        await session.commit()
    except IntegrityError:  # this transactionId created a task already: answer with it
        await session.rollback()
        assert body.tx is not None
        first = await sync.created_by("task", caller.user_id, where.organization_id, body.tx.transactionId)
        existing = await session.get(Task, first) if first else None
        if existing is None:
            raise HTTPException(
                409, "this transactionId created a task that has since been deleted"
            ) from None
        return JSONResponse(task_json(existing), 200)  # a replay: 200, not 201
    return task_json(task)


# --8<-- [end:create_task]


async def _task(session: AsyncSession, project_id: str, task_id: str) -> Task:
    task = await session.get(Task, task_id)
    if task is None or task.project_id != project_id:
        raise HTTPException(404, "task not found")
    return task


# --8<-- [start:update_task]
@router.patch(PROJECT + "/tasks/{task_id}")
async def update_task(
    org: str, project_id: str, task_id: str, body: TaskPatch, caller: CallerDep, session: Session
) -> Any:
    await sync.organization_slice(caller, org, project_id)
    task = await _task(session, project_id, task_id)
    sync.context(session, user_id=caller.user_id, tx=body.tx.model_dump() if body.tx else None)
    for field, value in body.model_dump(exclude_unset=True, exclude={"tx"}).items():
        setattr(task, field, value)  # the same value again is no change: no activity
    task.revision += 1
    await session.commit()  # changedKeys come from the ORM's own change tracking
    return task_json(task)


# --8<-- [end:update_task]


@router.delete(PROJECT + "/tasks/{task_id}", status_code=204)
async def delete_task(org: str, project_id: str, task_id: str, caller: CallerDep, session: Session) -> None:
    await sync.organization_slice(caller, org, project_id)
    task = await _task(session, project_id, task_id)
    sync.context(session, user_id=caller.user_id)
    for comment in await session.scalars(select(Comment).where(Comment.task_id == task.id)):
        await session.delete(comment)  # each records its own delete
    await session.flush()
    await session.delete(task)
    await session.commit()


@router.post(PROJECT + "/tasks/{task_id}/comments", status_code=201)
async def create_comment(
    org: str, project_id: str, task_id: str, body: CommentIn, caller: CallerDep, session: Session
) -> Any:
    where = await sync.organization_slice(caller, org, project_id)
    await _task(session, project_id, task_id)
    comment = Comment(
        id=new_id("cmt"),
        organization_id=where.organization_id,
        project_id=project_id,
        task_id=task_id,
        body=body.body,
        internal=body.internal,
    )
    sync.context(session, user_id=caller.user_id)
    session.add(comment)
    await session.commit()
    return {"id": comment.id}


# --8<-- [start:mount]
@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with sync.lifespan(app):  # syncstream's tables, the log tailer, keep-alive
        async with sync.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)  # the team's tables (use migrations in production)
        await sync.capture()  # with SYNCSTREAM_CAPTURE=on: triggers on the tables just created
        yield


app = FastAPI(title="tasks", lifespan=lifespan)
app.include_router(router)
sync.install(app)  # the streams, sign-up/sign-in, organizations, projects, memberships
# --8<-- [end:mount]
