"""Attachment uploads: streamed to temporary files, stopped at the size limit.

Both doors (the compose page and the API) install this handler before anything
reads the request body, so a too-large file never fills memory or the disk.
"""

from __future__ import annotations

from django.core.files.uploadhandler import SkipFile, TemporaryFileUploadHandler
from django.http import HttpRequest

from mailbox.compose import services


class CappedUploadHandler(TemporaryFileUploadHandler):
    """Uploads go to temporary files; past ``limit`` bytes in all, files are skipped."""

    def __init__(self, request: HttpRequest, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.received = 0
        self.refused = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.refused = True
            raise SkipFile
        return super().receive_data_chunk(raw_data, start)


def cap_uploads(request: HttpRequest, already: int = 0) -> CappedUploadHandler:
    """Install the capped handler (``already``: bytes the message holds);
    call before anything reads the request body."""
    handler = CappedUploadHandler(
        request, max(0, services.attachment_limit_bytes() - already)
    )
    request.upload_handlers = [handler]
    return handler
