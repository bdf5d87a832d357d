"""`/v1/credit/datasets`: upload (the file's bytes as the body, streamed to disk), list, read, remove."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, Request, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter

from flywheel.plugins.credit import datasets
from flywheel.plugins.credit.contracts import DatasetPage, DatasetRead, DatasetVersionRead
from flywheel.plugins.credit.paging import Cursor, Limit, after, next_cursor
from flywheel.server.plugin_api import Caller

_TEXT = r"^[^\x00-\x1f\x7f]+$"
Name = Annotated[str, QueryParameter(min_length=1, max_length=200, pattern=_TEXT, description="Dataset name")]
Column = Annotated[str, QueryParameter(min_length=1, max_length=200, pattern=_TEXT)]
OptColumn = Annotated[str | None, QueryParameter(min_length=1, max_length=200, pattern=_TEXT)]


class DatasetController(Controller):
    path = "/v1/credit"
    tags = ["credit"]

    @post("/datasets", operation_id="creditUploadDataset", status_code=201,
          request_max_body_size=datasets.MAX_UPLOAD_BYTES,
          opt={"own_body_checks": True, "openapi_body": "tabular_file"})
    async def upload_dataset(self, request: Request, state: State, principal: Caller, name: Name, target: Column,
                             bad_value: OptColumn = None, time_column: OptColumn = None) -> DatasetVersionRead:
        """Upload a CSV (optionally gzipped) or Parquet file as the body; it becomes the next version of
        the dataset `name` (created if new). Identical content answers with the version it already has
        (`existing: true`). `target` is the outcome column (1 = bad, or the value `bad_value`)."""
        return await datasets.upload(state.flywheel, principal.tenant_id, request.stream(), name=name, target=target,
                                     bad_value=bad_value, time_column=time_column)

    @get("/datasets", operation_id="creditListDatasets")
    async def list_datasets(self, state: State, principal: Caller, cursor: Cursor = None,
                            limit: Limit = 50) -> DatasetPage:
        items = await datasets.list_datasets(state.flywheel.db, principal.tenant_id, after(cursor), limit)
        return DatasetPage(items=items, next_cursor=next_cursor(items, limit))

    @get("/datasets/{dataset_id:uuid}", operation_id="creditGetDataset")
    async def get_dataset(self, state: State, principal: Caller, dataset_id: FromPath[UUID]) -> DatasetRead:
        return await datasets.get_dataset(state.flywheel.db, principal.tenant_id, dataset_id)

    @get("/dataset-versions/{dataset_version_id:uuid}", operation_id="creditGetDatasetVersion")
    async def get_dataset_version(self, state: State, principal: Caller,
                                  dataset_version_id: FromPath[UUID]) -> DatasetVersionRead:
        """A version with its schema and profile."""
        return await datasets.get_version(state.flywheel.db, principal.tenant_id, dataset_version_id)

    @delete("/dataset-versions/{dataset_version_id:uuid}", operation_id="creditDeleteDatasetVersion",
            status_code=204)
    async def delete_dataset_version(self, state: State, principal: Caller,
                                     dataset_version_id: FromPath[UUID]) -> None:
        """Remove a version no run has used (409 `version_in_use` otherwise)."""
        await datasets.delete_version(state.flywheel, principal.tenant_id, dataset_version_id)
