"""HTTP routes. Handlers get the caller's `principal`; every query filters on its tenant."""

from __future__ import annotations

import uuid
from uuid import UUID

from litestar import Controller, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from flywheel.server.plugin_api import Caller, NotFound
from flywheel_example.contracts import NoteCreate, NoteRead, Stats

_COLS = "id, title, body, created_at"


class NoteController(Controller):
    # Handler names must not shadow the `get`/`delete` decorators in the class body.
    path = "/v1/example"
    tags = ["example"]

    @post("/notes", operation_id="exampleCreateNote")
    async def create_note(self, state: State, principal: Caller, data: JSONBody[NoteCreate]) -> NoteRead:
        row = await state.flywheel.db.fetchrow(
            f"INSERT INTO example_notes (id, tenant_id, title, body) VALUES ($1, $2, $3, $4) RETURNING {_COLS}",
            uuid.uuid4(), principal.tenant_id, data.title, data.body)
        return NoteRead(**row)

    @get("/notes", operation_id="exampleListNotes")
    async def list_notes(self, state: State, principal: Caller) -> list[NoteRead]:
        rows = await state.flywheel.db.fetch(
            f"SELECT {_COLS} FROM example_notes WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT 500",
            principal.tenant_id)
        return [NoteRead(**r) for r in rows]

    @get("/notes/{note_id:uuid}", operation_id="exampleGetNote")
    async def get_note(self, state: State, principal: Caller, note_id: FromPath[UUID]) -> NoteRead:
        row = await state.flywheel.db.fetchrow(
            f"SELECT {_COLS} FROM example_notes WHERE id = $1 AND tenant_id = $2", note_id, principal.tenant_id)
        if row is None:
            raise NotFound("no such note")
        return NoteRead(**row)

    @delete("/notes/{note_id:uuid}", operation_id="exampleDeleteNote", status_code=204)
    async def delete_note(self, state: State, principal: Caller, note_id: FromPath[UUID]) -> None:
        status = await state.flywheel.db.execute(
            "DELETE FROM example_notes WHERE id = $1 AND tenant_id = $2", note_id, principal.tenant_id)
        if status == "DELETE 0":
            raise NotFound("no such note")

    @get("/stats", operation_id="exampleStats")
    async def stats(self, state: State, principal: Caller) -> Stats:
        """What the last `example.count_notes` job counted."""
        row = await state.flywheel.db.fetchrow(
            "SELECT notes, counted_at FROM example_stats WHERE tenant_id = $1", principal.tenant_id)
        return Stats(notes=row["notes"], counted_at=row["counted_at"]) if row else Stats(notes=0, counted_at=None)
