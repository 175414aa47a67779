"""Step 1 of docs/library.md: one Syncstream, one declaration per entity type."""

from __future__ import annotations

from syncstream import Syncstream, in_project

from .models import Board, Comment, Task
from .permissions import may_read

sync = Syncstream(permission=may_read)  # SYNCSTREAM_* settings, read at start

sync.entity(
    "board",
    Board,
    scope=in_project(),
    shape=lambda b: {"id": b.id, "projectId": b.project_id, "name": b.name},
)
sync.entity(
    "task",
    Task,
    scope=in_project(),
    untracked=["revision"],
    shape=lambda t: {"id": t.id, "boardId": t.board_id, "title": t.title, "done": t.done},
)
sync.entity(
    "comment",
    Comment,
    scope=in_project(),
    shape=lambda c: {"id": c.id, "taskId": c.task_id, "body": c.body, "internal": c.internal},
)
