"""An export from the path, checked for ownership (anyone else's is a 404)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from primetrade.auth.dependencies import CurrentUser
from primetrade.exports import service
from primetrade.exports.models import Export
from primetrade.runtime import SessionDep


async def get_visible_export(
    export_id: uuid.UUID, session: SessionDep, user: CurrentUser
) -> Export:
    return await service.get_visible(session, user, export_id)


ExportFromPath = Annotated[Export, Depends(get_visible_export)]
