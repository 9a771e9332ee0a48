"""Multipart uploads: the files of one form field, counted and bounded here.

Most bodies have the layout that curl -F, browsers and httpx send: every part a file in the one field,
with only Content-Disposition and Content-Type headers. `file_parts` reads those with a few string
searches over the body (held in memory anyway: the byte cap bounds it) instead of Starlette's streaming
parser, which is much of the event loop's work per small upload (what it buys: docs/performance.md,
measured with `make bench`). It is an optimisation of Starlette's parser, tested to read exactly what
Starlette reads (tests/test_multipart.py); every other body goes to Starlette's parser.
"""

from __future__ import annotations

import re

from starlette.datastructures import UploadFile
from starlette.requests import Request

from app.dataplane import Upload
from app.errors import MissingFile, TooManyFiles

MAX_FIELDS = 16  # text fields tolerated beside the files
BOUNDARY = re.compile(r'boundary=(?:"([^"]{1,70})"|([^\s";,]{1,70}))', re.IGNORECASE)
DISPOSITION = re.compile(
    rb'content-disposition: *form-data; *name="([^"\\\r\n]*)"; *filename="([^"\\\r\n]*)" *', re.IGNORECASE
)


async def read_files(request: Request, field: str, max_files: int) -> list[Upload]:
    """The files in the multipart field `field`, in upload order: 1 to `max_files` of them, else 422."""
    body = await request.body()  # within the byte cap (BodyLimitMiddleware); Starlette's form() reuses it
    content_type = request.headers.get("content-type", "")
    uploads = file_parts(body, content_type, field)
    if uploads is None:
        uploads = await _parsed_files(request, body, content_type, field, max_files)
    if not uploads:
        raise MissingFile(f"The multipart form has no file in the field `{field}`.")
    if len(uploads) > max_files:
        raise _too_many(field, max_files)
    return uploads


def _too_many(field: str, max_files: int) -> TooManyFiles:
    if max_files == 1:
        return TooManyFiles(f"Send one file in the field `{field}`.")
    return TooManyFiles(f"At most {max_files} files are accepted in one batch.")


async def _parsed_files(request: Request, body: bytes, content_type: str, field: str, max_files: int) -> list[Upload]:
    """Starlette's reading of the form. Its own file and field limits are set above the number of parts
    the body can hold (no delimiter occurs inside a part), so that the count, and the answer to too
    many files, are ours."""
    match = BOUNDARY.search(content_type)
    parts = body.count(b"--" + (match.group(1) or match.group(2)).encode("latin-1")) if match else 0
    if parts > max_files + MAX_FIELDS + 1:  # more parts than a valid upload can have: don't parse them all
        raise _too_many(field, max_files)
    form = await request.form(max_files=parts + 1, max_fields=parts + 1)
    uploads = []
    for index, value in enumerate(form.getlist(field)):
        if not isinstance(value, UploadFile):
            detail = f"The field `{field}` holds text, not a file."
            raise MissingFile.for_file(index, None, detail) if max_files > 1 else MissingFile(detail)
        uploads.append(Upload(await value.read(), value.filename))
    return uploads


def file_parts(body: bytes, content_type: str, field: str) -> list[Upload] | None:
    """The files of a multipart body whose parts are all files in the field `field`, or None for any
    other body, which Starlette's parser then reads."""
    match = BOUNDARY.search(content_type)
    if match is None:
        return None
    opening = b"--" + (match.group(1) or match.group(2)).encode("latin-1")
    if not body.startswith(opening + b"\r\n"):
        return None
    uploads, at = [], len(opening) + 2
    while True:
        end = body.find(b"\r\n" + opening, at)
        headers_end = body.find(b"\r\n\r\n", at, end)
        if end < 0 or headers_end < 0:
            return None
        lines = body[at:headers_end].split(b"\r\n")
        dispositions = [line for line in lines if line[:20].lower() == b"content-disposition:"]
        disposition = DISPOSITION.fullmatch(dispositions[0]) if len(dispositions) == 1 else None
        if disposition is None or disposition.group(1) != field.encode():
            return None
        if any(line[:13].lower() != b"content-type:" for line in lines if line is not dispositions[0]):
            return None  # another header, such as Content-Transfer-Encoding (which Starlette would apply)
        uploads.append(Upload(body[headers_end + 4 : end], _decode_filename(disposition.group(2))))
        at = end + 2 + len(opening)
        if body.startswith(b"--", at):  # the closing delimiter
            return uploads
        if not body.startswith(b"\r\n", at):
            return None
        at += 2


def _decode_filename(raw: bytes) -> str:
    try:  # as Starlette decodes it
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("latin-1")
