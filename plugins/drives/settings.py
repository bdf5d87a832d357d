"""`/v1/drives/settings`: the tenant's risk-band shares (`drives_settings`), read by the scoring job.

Reading needs `read`; changing needs `admin` (bands decide which drives people are told to replace).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from uuid import UUID

from litestar import Controller, get, put
from litestar.datastructures import State
from litestar.params import JSONBody

from flywheel.plugins.drives.contracts import RiskBands
from flywheel.plugins.drives.scoring import band_shares
from flywheel.server.plugin_api import Caller


async def read_bands(db, tenant_id: UUID) -> RiskBands:
    high, medium = await band_shares(db, tenant_id)
    return RiskBands(high_share=high, medium_share=medium)


async def write_bands(db, tenant_id: UUID, bands: RiskBands) -> RiskBands:
    await db.execute(
        """INSERT INTO drives_settings (tenant_id, high_share, medium_share) VALUES ($1, $2, $3)
           ON CONFLICT (tenant_id) DO UPDATE SET high_share = EXCLUDED.high_share,
                                                 medium_share = EXCLUDED.medium_share""",
        tenant_id, bands.high_share, bands.medium_share)
    return bands


class DriveSettingsController(Controller):
    # A path without parameters: Litestar matches it before DriveController's `/{serial:path}`.
    path = "/v1/drives/settings"
    tags = ["drives"]

    @get("/", operation_id="drivesGetSettings")
    async def get_settings(self, state: State, principal: Caller) -> RiskBands:
        """The tenant's risk bands (the defaults until an admin sets them)."""
        return await read_bands(state.flywheel.db, principal.tenant_id)

    @put("/", operation_id="drivesPutSettings", opt={"scope": "admin"})
    async def put_settings(self, state: State, principal: Caller, data: JSONBody[RiskBands]) -> RiskBands:
        """Set the risk bands (scope `admin`); the next scoring run uses them."""
        return await write_bands(state.flywheel.db, principal.tenant_id, data)


# -- where `flywheel drives fetch` downloads from (an operator's setting, not a tenant's) --------

FETCH_URL_ENV = "FLYWHEEL_DRIVES_FETCH_URL"
# Backblaze's own address for its quarterly archives (2016 on); {year} and {q} are filled in.
DEFAULT_FETCH_URL = "https://f001.backblazeb2.com/file/Backblaze-Hard-Drive-Data/data_Q{q}_{year}.zip"


def fetch_url_pattern(environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(pattern, where it came from): FLYWHEEL_DRIVES_FETCH_URL when set, else Backblaze's address.

    The caller checks it with `fetch_plan.check_pattern`, naming the source in a refusal.
    """
    env = os.environ if environ is None else environ
    if env.get(FETCH_URL_ENV):
        return env[FETCH_URL_ENV], FETCH_URL_ENV
    return DEFAULT_FETCH_URL, "the default URL"
