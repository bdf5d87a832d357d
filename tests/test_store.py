"""The object store interface, run against both backends: a local folder and
a real S3-compatible server (SeaweedFS)."""

from __future__ import annotations

import asyncio
import os
import uuid

import httpx
import pytest

from flywheel.server.store import ObjectNotFound, StoreError, open_store
from flywheel.server.store import s3 as s3_module


@pytest.fixture(params=["local", "s3"])
async def store(request, tmp_path, monkeypatch):
    if request.param == "local":
        st = open_store(f"file://{tmp_path / 'store'}")
    else:
        server = request.getfixturevalue("s3_server")
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        from s3_server import BUCKET

        # A fresh prefix per test keeps tests independent on one bucket.
        st = open_store(f"s3://{BUCKET}/t-{uuid.uuid4().hex[:8]}", endpoint_url=server.endpoint_url)
    yield st
    await st.close()


async def test_put_get_head_overwrite(store):
    info = await store.put("a/b/c.bin", b"\x00\x01hello")
    assert info.key == "a/b/c.bin" and info.size == 7
    assert await store.get("a/b/c.bin") == b"\x00\x01hello"
    await store.put("a/b/c.bin", b"second")
    assert await store.get("a/b/c.bin") == b"second"
    assert (await store.head("a/b/c.bin")).size == 6
    assert await store.exists("a/b/c.bin") and not await store.exists("a/b/nope")


async def test_range_reads(store):
    await store.put("r.txt", b"0123456789")
    assert await store.get_range("r.txt", 2, 5) == b"234"
    assert await store.get_range("r.txt", 7) == b"789"
    assert await store.get_range("r.txt", 4, 4) == b""
    assert await store.get_range("r.txt", 8, 100) == b"89"
    with pytest.raises(ValueError):
        await store.get_range("r.txt", 5, 2)


async def test_missing_objects(store):
    for call in (store.get("nope"), store.head("nope"), store.get_range("nope", 0, 2)):
        with pytest.raises(ObjectNotFound) as err:
            await call
        assert err.value.key == "nope"
    await store.delete("nope")  # deleting what is not there is fine


async def test_list_is_ordered_and_prefix_scoped(store):
    keys = ["events/dt=2026-01-02/b.jsonl", "events/dt=2026-01-01/a.jsonl", "events/dt=2026-01-01/c.jsonl",
            "models/x/1/model.onnx", "eventsx/not-me"]
    await asyncio.gather(*(store.put(k, k.encode()) for k in keys))
    listed = [i.key async for i in store.list("events/")]
    assert listed == sorted(k for k in keys if k.startswith("events/"))
    assert [i.key async for i in store.list("events/dt=2026-01-01/")] == [
        "events/dt=2026-01-01/a.jsonl", "events/dt=2026-01-01/c.jsonl"]
    assert [i.key async for i in store.list("events")] == sorted(k for k in keys if k.startswith("events"))
    assert len([i async for i in store.list()]) == len(keys)
    assert await store.delete_prefix("events/") == 3
    assert [i.key async for i in store.list()] == ["eventsx/not-me", "models/x/1/model.onnx"]


@pytest.mark.parametrize("key", ["", "/abs", "../escape", "a/../../b", "a//b", "a/./b", "back\\slash"])
async def test_unsafe_keys_are_refused(store, key):
    with pytest.raises(StoreError):
        await store.put(key, b"x")
    with pytest.raises(StoreError):
        await store.get(key)


async def test_prefixed_views_are_isolated(store):
    a, b = store.for_prefix("tenants/a/"), store.for_prefix("tenants/b/")
    await a.put("secret.txt", b"A")
    await b.put("secret.txt", b"B")
    assert await a.get("secret.txt") == b"A" and await b.get("secret.txt") == b"B"
    assert [i.key async for i in a.list()] == ["secret.txt"]
    with pytest.raises(StoreError):
        await a.get("../b/secret.txt")
    with pytest.raises(ObjectNotFound) as err:
        await a.get("other.txt")
    assert err.value.key == "other.txt", "errors name the key as the view sees it"
    nested = a.for_prefix("models/")
    await nested.put("m.onnx", b"m")
    assert await store.get("tenants/a/models/m.onnx") == b"m"


async def test_files_round_trip(store, tmp_path, monkeypatch):
    # Small thresholds so the S3 backend takes its multipart path here.
    monkeypatch.setattr(s3_module, "MULTIPART_THRESHOLD", 6 << 20)
    monkeypatch.setattr(s3_module, "PART_SIZE", 5 << 20)
    src = tmp_path / "big.bin"
    payload = os.urandom(11 << 20)
    src.write_bytes(payload)
    info = await store.put_file("big/big.bin", src)
    assert info.size == len(payload)
    out = await store.get_file("big/big.bin", tmp_path / "out" / "big.bin")
    assert out.read_bytes() == payload
    assert await store.get_range("big/big.bin", 6 << 20, (6 << 20) + 10) == payload[6 << 20:(6 << 20) + 10]


async def test_presigned_urls(store):
    await store.put("shared/report.txt", b"for a third party")
    url = await store.presigned_url("shared/report.txt", expires_s=60)
    if type(store).__name__ == "LocalStore":
        assert url is None, "a local folder has no URLs to hand out"
        return
    async with httpx.AsyncClient() as client:
        r = await client.get(url)  # no credentials: the signature in the URL is all
        assert r.status_code == 200 and r.content == b"for a third party"
        tampered = url.replace("report.txt", "other.txt")
        assert (await client.get(tampered)).status_code == 403


async def test_local_writes_are_atomic(tmp_path):
    st = open_store(f"file://{tmp_path}")
    payloads = [bytes([i]) * 200_000 for i in range(20)]
    await asyncio.gather(*(st.put("same.bin", p) for p in payloads))
    data = await st.get("same.bin")
    assert data in payloads, "a reader sees one whole write, never a mix"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.bin"], "no partial files left behind"


async def test_s3_checks_signatures(s3_server, monkeypatch):
    from s3_server import BUCKET

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.env["AWS_ACCESS_KEY_ID"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    st = open_store(f"s3://{BUCKET}/x", endpoint_url=s3_server.endpoint_url)
    try:
        with pytest.raises(Exception) as err:
            await st.put("a.txt", b"x")
        assert "SignatureDoesNotMatch" in str(err.value) or "AccessDenied" in str(err.value)
    finally:
        await st.close()


def test_store_urls():
    with pytest.raises(StoreError, match="scheme"):
        open_store("ftp://host/x")
    with pytest.raises(StoreError, match="bucket"):
        open_store("s3:///prefix")
