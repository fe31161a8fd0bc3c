"""Media: files uploaded by agents or received from customers, stored by content."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from shared.protocol.common import OutModel

# The multipart part `POST /api/v1/media` reads the file from.
UPLOAD_FIELD = "file"
# Longest file name kept (longer names are cut, keeping the extension).
MAX_FILENAME_LENGTH = 200


class MediaOut(OutModel):
    """A stored file as the API shows it; its bytes are at `GET /api/v1/media/{id}`."""

    id: uuid.UUID
    company_id: uuid.UUID
    mime: str = Field(max_length=200, description="detected from the content, not the name")
    size: int = Field(ge=0, description="bytes")
    sha256: str = Field(min_length=64, max_length=64, description="hex digest of the content")
    filename: str | None = Field(default=None, max_length=300)
    uploaded_by_id: uuid.UUID | None = None
    created_at: datetime
