"""The fast path for multipart uploads (app/multipart.py, file_parts) reads exactly what Starlette's
parser reads, and leaves every other body to it."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from app.api.v1.multipart import file_parts


async def echo(request: Request) -> Response:
    """What Starlette's own parser makes of the body: every field's name, filename and bytes, as a repr."""
    form = await request.form()
    fields = [
        (name, value.filename, await value.read()) if not isinstance(value, str) else (name, None, value)
        for name, value in form.multi_items()
    ]
    return Response(repr(fields).encode())


STARLETTE = TestClient(Starlette(routes=[Route("/", echo, methods=["POST"])]))


def starlette_reads(body: bytes, content_type: str) -> list[tuple[str, str | None, bytes | str]] | None:
    response = STARLETTE.post("/", content=body, headers={"Content-Type": content_type})
    return eval(response.content) if response.status_code == 200 else None


def fast_reads(body: bytes, content_type: str, field: str) -> list[tuple[str, str | None, bytes | str]] | None:
    parts = file_parts(body, content_type, field)
    return None if parts is None else [(field, part.filename, part.data or b"") for part in parts]


def httpx_body(files: dict[str, object], data: dict[str, str] | None = None) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://x/", files=files, data=data)  # type: ignore[arg-type]
    return request.read(), request.headers["content-type"]


def raw(boundary: str, *parts: bytes, preamble: bytes = b"") -> bytes:
    return (
        preamble + b"".join(f"--{boundary}\r\n".encode() + p + b"\r\n" for p in parts) + f"--{boundary}--\r\n".encode()
    )


FILE = b'Content-Disposition: form-data; name="file"; filename="7.png"\r\nContent-Type: image/png\r\n\r\nPNGDATA'
CASES = {
    "httpx": httpx_body({"file": ("7.png", b"\x89PNG\r\n--not-the-boundary\r\n\x00", "image/png")}),
    "curl": (raw("xyz", FILE), "multipart/form-data; boundary=xyz"),
    "quoted boundary": (raw("a b:c", FILE), 'multipart/form-data; boundary="a b:c"'),
    "lowercase header, no part type": (
        raw("q", b'content-disposition: form-data; name="file"; filename="x"\r\n\r\nDATA'),
        "multipart/form-data; boundary=q",
    ),
    "empty file": (
        raw("q", b'Content-Disposition: form-data; name="file"; filename="x"\r\n\r\n'),
        "multipart/form-data; boundary=q",
    ),
    "two parts": httpx_body({"file": ("7.png", b"DATA", "image/png")}, {"note": "hi"}),
    "text field named file": httpx_body({}, {"file": "not a file"}),
    "other field name": (raw("q", FILE.replace(b'name="file"', b'name="image"')), "multipart/form-data; boundary=q"),
    "filename with an escaped quote": (
        raw("q", FILE.replace(b'"7.png"', b'"7\\".png"')),
        "multipart/form-data; boundary=q",
    ),
    "preamble": (raw("q", FILE, preamble=b"this is a preamble\r\n"), "multipart/form-data; boundary=q"),
    "no closing delimiter": (raw("q", FILE)[: -len("--q--\r\n")], "multipart/form-data; boundary=q"),
    "base64 transfer encoding": (
        raw(
            "q",
            b'Content-Disposition: form-data; name="file"; filename="x"\r\nContent-Transfer-Encoding: base64\r\n\r\nUE5HREFUQQ==',
        ),
        "multipart/form-data; boundary=q",
    ),
    "no boundary parameter": (raw("q", FILE), "multipart/form-data"),
}

FILES = FILE.replace(b'name="file"', b'name="files"')
BATCHES = {
    "httpx, 3 files": httpx_body([("files", (f"{i}.png", bytes([i]) * 10, "image/png")) for i in range(3)]),  # type: ignore[dict-item]
    "utf-8 and latin-1 filenames": (
        raw("q", *(FILES.replace(b'"7.png"', name) for name in ('"s\xc3\xa9pt.png"'.encode("latin-1"), b'"\xe9.png"'))),
        "multipart/form-data; boundary=q",
    ),
    "a text field among the files": (
        raw("q", FILES, b'Content-Disposition: form-data; name="files"\r\n\r\ntext'),
        "multipart/form-data; boundary=q",
    ),
    "another field": (raw("q", FILES, FILE), "multipart/form-data; boundary=q"),
}


@pytest.mark.parametrize(("field", "name"), [("file", n) for n in CASES] + [("files", n) for n in BATCHES])
def test_reads_what_starlette_reads_or_leaves_it_to_starlette(field: str, name: str) -> None:
    body, content_type = {**CASES, **BATCHES}[name]
    fast = fast_reads(body, content_type, field)
    assert fast is None or fast == starlette_reads(body, content_type), name


def test_the_usual_clients_take_the_fast_path() -> None:
    for name in ("httpx", "curl", "quoted boundary", "lowercase header, no part type", "empty file"):
        assert file_parts(*CASES[name], "file") is not None, name
    for name in ("httpx, 3 files", "utf-8 and latin-1 filenames"):
        assert file_parts(*BATCHES[name], "files") is not None, name


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(max_size=600), min_size=1, max_size=4),
    st.sampled_from(["b0undary", "----WebKitFormBoundary7MA4YWxkTrZu0gW", "x"]),
)
def test_any_file_contents_read_as_starlette_reads_them(contents: list[bytes], boundary: str) -> None:
    head = b'Content-Disposition: form-data; name="files"; filename="f"\r\n\r\n'
    body = raw(boundary, *(head + content for content in contents))
    content_type = f"multipart/form-data; boundary={boundary}"
    fast = fast_reads(body, content_type, "files")
    assert fast is None or fast == starlette_reads(body, content_type)
    if not any(f"--{boundary}".encode() in content for content in contents):  # well formed: the fast path takes it
        assert fast == [("files", "f", content) for content in contents]
