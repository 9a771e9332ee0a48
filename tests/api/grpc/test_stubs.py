"""The committed gRPC stubs are what grpcio-tools generates from the vendored proto (`make grpc-stubs`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.api.grpc.proto.generate import HERE, PROTO, ROOT, STUBS, generate


def test_the_stubs_are_up_to_date(tmp_path: Path) -> None:
    written = generate(tmp_path)
    for path in written:
        committed = HERE / path.name
        assert committed.read_bytes() == path.read_bytes(), f"{committed.relative_to(ROOT)} is stale: make grpc-stubs"
    assert sorted(path.name for path in written) == sorted(STUBS)


@pytest.mark.parametrize("name", ["LICENSE-Apache-2.0", "LICENSE-BSD-3-Clause-NVIDIA", "SOURCE.md"])
def test_the_proto_keeps_its_licences_and_source(name: str) -> None:
    assert (PROTO.parent / name).stat().st_size > 0
    assert "package inference;" in PROTO.read_text()
