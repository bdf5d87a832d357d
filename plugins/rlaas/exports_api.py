"""`/v1/rlaas/exports`: SFT and DPO training data sets, written by a job, fetched by URL.

Creating one needs `write` (it queues work and writes to the tenant's store);
reading and downloading need `read`, like the interactions they hold.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Stream

from flywheel.plugins.rlaas import exports
from flywheel.plugins.rlaas.export_types import (
    PAGE_MAX,
    ExportCreate,
    ExportDownload,
    ExportKind,
    ExportPage,
    ExportRead,
    ExportStatus,
)
from flywheel.server.plugin_api import Caller


class ExportController(Controller):
    path = "/v1/rlaas/exports"
    tags = ["rlaas"]

    @post("/", operation_id="rlaasCreateExport", status_code=202, opt={"scope": "write"})
    async def create_export(self, state: State, principal: Caller, data: JSONBody[ExportCreate]) -> ExportRead:
        """Queue an export (`kind` `sft` or `dpo`, and the `selection`); it comes back `queued` with
        its `job_id` (progress at `/v1/jobs/{id}`), and is `succeeded` once its file is written."""
        return await exports.create_export(state.flywheel, principal.tenant_id, data)

    @get("/", operation_id="rlaasListExports")
    async def list_exports(
        self, state: State, principal: Caller,
        kind: Annotated[ExportKind | None, QueryParameter()] = None,
        status: Annotated[ExportStatus | None, QueryParameter()] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=PAGE_MAX)] = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=1000)] = None,
    ) -> ExportPage:
        """The tenant's exports, newest first (keyset pages: pass `next_cursor` back as `cursor`)."""
        return await exports.list_exports(state.flywheel, principal.tenant_id, kind=kind, status=status,
                                          limit=limit, cursor=cursor)

    @get("/{export_id:uuid}", operation_id="rlaasGetExport")
    async def get_export(self, state: State, principal: Caller, export_id: FromPath[UUID]) -> ExportRead:
        """One export: its status, row count, SHA-256 and object keys."""
        return await exports.export_record(state.flywheel, principal.tenant_id, export_id)

    @get("/{export_id:uuid}/download", operation_id="rlaasDownloadExport",
         opt={"errors": {409: "the export is not written (yet): `export_not_ready`"}})
    async def download_export(
        self, state: State, principal: Caller, export_id: FromPath[UUID],
        expires_s: Annotated[int, QueryParameter(ge=60, le=7 * 86400)] = exports.DOWNLOAD_EXPIRES_S,
    ) -> ExportDownload:
        """Where to fetch the data file. `method` says which: `presigned_url` (S3: fetch `url` without
        Flywheel's key until `expires_at`) or `stream` (a local store: GET `url`, this API's `/data`,
        with the same key)."""
        return await exports.export_download(state.flywheel, principal.tenant_id, export_id, expires_s=expires_s)

    @get("/{export_id:uuid}/data", operation_id="rlaasExportData", media_type="application/x-ndjson",
         opt={"errors": {409: "the export is not written (yet): `export_not_ready`"}})
    async def export_data(self, state: State, principal: Caller, export_id: FromPath[UUID]) -> Stream:
        """The data file's bytes (JSONL), streamed through the API on any store."""
        record = exports.finished(await exports.export_record(state.flywheel, principal.tenant_id, export_id))
        return Stream(exports.data_chunks(state.flywheel, principal.tenant_id, record),
                      media_type="application/x-ndjson",
                      headers={"Content-Length": str(record.size_bytes), "ETag": f'"{record.sha256}"',
                               "Content-Disposition": f'attachment; filename="export-{export_id}.jsonl"'})
