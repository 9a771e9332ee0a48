"""The fast path for single-file multipart uploads (app/routes/predict.py, single_file_part) reads exactly
what Starlette's parser reads, and leaves every other body to it."""

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

from app.routes.predict import single_file_part


async def echo(request: Request) -> Response:
    """What Starlette's own parser makes of the field `file`: its bytes, or a note that it isn't a file."""
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        return Response(b"no file", status_code=422)
    return Response(await upload.read())


STARLETTE = TestClient(Starlette(routes=[Route("/", echo, methods=["POST"])]))


def starlette_reads(body: bytes, content_type: str) -> bytes | None:
    response = STARLETTE.post("/", content=body, headers={"Content-Type": content_type})
    return response.content if response.status_code == 200 else None


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
    "no boundary parameter": (raw("q", FILE), "multipart/form-data"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_reads_what_starlette_reads_or_leaves_it_to_starlette(name: str) -> None:
    body, content_type = CASES[name]
    fast = single_file_part(body, content_type)
    assert fast is None or fast == starlette_reads(body, content_type), name


def test_the_usual_clients_take_the_fast_path() -> None:
    for name in ("httpx", "curl", "quoted boundary", "lowercase header, no part type", "empty file"):
        assert single_file_part(*CASES[name]) is not None, name


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from(["b0undary", "----WebKitFormBoundary7MA4YWxkTrZu0gW", "x"]))
def test_any_file_content_reads_as_starlette_reads_it(content: bytes, boundary: str) -> None:
    body = raw(boundary, b'Content-Disposition: form-data; name="file"; filename="f"\r\n\r\n' + content)
    content_type = f"multipart/form-data; boundary={boundary}"
    fast = single_file_part(body, content_type)
    assert fast is None or fast == starlette_reads(body, content_type)
    if f"--{boundary}".encode() not in content:  # a well-formed body: the fast path takes it
        assert fast == content
