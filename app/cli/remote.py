"""`mnist-service predict --url` and `read --url`: the files posted to a running service's batch route
(`POST /v1/predict/batch`, `/v1/read/batch`), several requests at once, each within the service's
limits (`GET /v1/model`). A 503 is retried after its Retry-After; a batch refused for one bad file
(the error's `file` names it) is sent again without it, so every other file is answered."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from app.cli.jobs import Job
from app.cli.outcomes import Answer, Outcome, Refusal

DEFAULT_MAX_FILES = 64  # the service's defaults, for a service whose /v1/model doesn't say
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
PART_OVERHEAD = 512  # bytes of multipart headers and delimiter per file, counted against the body cap
MAX_RETRY_AFTER_S = 60.0

Item = tuple[int, Path]  # a file's index on the command line, and its path


class ServiceUnavailable(Exception):
    """The service cannot be used: unreachable, or it refuses every request (a wrong URL or key)."""


async def answer_files(
    files: list[Path],
    url: str,
    job: Job,
    report: Callable[[int, Outcome], None],
    *,
    batch_files: int | None = None,
    concurrency: int = 4,
    api_key: str | None = None,
    retries: int = 5,
    timeout_s: float = 120.0,
) -> None:
    """Answer `job` for each file with the service at `url`; `report(index, outcome)` as each is known. Raises
    ServiceUnavailable when the service can't be reached or refuses to serve us."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    timeout = httpx.Timeout(timeout_s, connect=10.0)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=timeout, limits=limits) as client:
        client_ = Client(client, job, retries, report)
        max_files, max_bytes = await client_.limits()
        batches = plan(files, min(batch_files or max_files, max_files), max_bytes, report)

        async def worker(batches: Iterator[list[Item]]) -> None:
            for batch in batches:  # one iterator shared by the workers: each batch is taken once
                await client_.post(batch)

        shared = iter(batches)
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker(shared))


def plan(files: list[Path], max_files: int, max_bytes: int, report: Callable[[int, Outcome], None]) -> list[list[Item]]:
    """The files in batches of at most `max_files` files and `max_bytes` of body, in order; a file
    that can't be read, or is too big for any batch, is refused here."""
    batches: list[list[Item]] = []
    batch: list[Item] = []
    size = 0
    for index, path in enumerate(files):
        try:
            part = path.stat().st_size + PART_OVERHEAD
        except OSError as exc:
            report(index, Refusal(str(path), "unreadable", f"cannot read the file: {exc.strerror or exc}."))
            continue
        if part > max_bytes:
            detail = f"The file is {part - PART_OVERHEAD} bytes; the service accepts at most {max_bytes} in a batch."
            report(index, Refusal(str(path), "payload_too_large", detail))
            continue
        if batch and (len(batch) == max_files or size + part > max_bytes):
            batches.append(batch)
            batch, size = [], 0
        batch.append((index, path))
        size += part
    if batch:
        batches.append(batch)
    return batches


class Client:
    """Requests to one service, with retries; reports each file's outcome."""

    def __init__(self, client: httpx.AsyncClient, job: Job, retries: int, report: Callable[[int, Outcome], None]):
        self.client = client
        self.job = job
        self.retries = retries
        self.report = report

    async def limits(self) -> tuple[int, int]:
        """The most files and bytes one batch request may hold, as the service's /v1/model says."""
        response = await self.request("GET", "/v1/model")
        if response.status_code != 200:
            code, detail = error_of(response)
            raise ServiceUnavailable(f"GET {response.url} answered {response.status_code}: {detail} ({code})")
        limits = response.json().get("limits", {})
        return int(limits.get("max_batch_files", DEFAULT_MAX_FILES)), int(
            limits.get("max_batch_body_bytes", DEFAULT_MAX_BYTES)
        )

    async def post(self, batch: list[Item]) -> None:
        """Read the batch's files and have them answered; a file that can't be read is refused."""
        items: list[tuple[int, Path, bytes]] = []
        for index, path in batch:
            try:
                items.append((index, path, path.read_bytes()))
            except OSError as exc:
                self.report(index, Refusal(str(path), "unreadable", f"cannot read the file: {exc.strerror or exc}."))
        await self._send(items)

    async def _send(self, items: list[tuple[int, Path, bytes]]) -> None:
        if not items:
            return
        files = [("files", (path.name, data, "application/octet-stream")) for _, path, data in items]
        response = await self.request("POST", self.job.path, params=self.job.params, files=files)
        if response.status_code == 200:
            body = response.json()
            for (index, path, _), answer in zip(items, body[self.job.answers], strict=True):
                # as the single-file route answers it: a reading of a batch leaves the version to the batch
                answer.setdefault("model_version", body["model_version"])
                self.report(index, Answer(str(path), answer))
            return
        code, detail = error_of(response)
        bad = failed_file(response, len(items))
        if bad is not None:  # one file failed the batch: the others are sent again
            at, file_detail = bad
            index, path, _ = items[at]
            self.report(index, Refusal(str(path), code, file_detail))
            await self._send(items[:at] + items[at + 1 :])
        elif len(items) > 1:  # the batch as a whole was refused (a 500, a proxy's limit): halve it
            await self._send(items[: len(items) // 2])
            await self._send(items[len(items) // 2 :])
        else:
            index, path, _ = items[0]
            self.report(index, Refusal(str(path), code, detail))

    async def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        """The response, after up to `retries` retries of a 503 (after its Retry-After) or of a
        connection that failed; ServiceUnavailable when the service can't be reached."""
        for attempt in range(self.retries + 1):
            try:
                response = await self.client.request(method, path, **options)
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise ServiceUnavailable(
                        f"cannot reach {self.client.base_url}: {exc or type(exc).__name__}"
                    ) from None
                await asyncio.sleep(min(0.5 * 2**attempt, 10.0))
                continue
            if response.status_code != 503 or attempt == self.retries:
                return response
            await asyncio.sleep(retry_after(response))
        raise AssertionError("unreachable")


def retry_after(response: httpx.Response) -> float:
    """Seconds to wait before retrying, from Retry-After (seconds or an HTTP date; 1 s without one)."""
    value = response.headers.get("retry-after", "1").strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            seconds = 1.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def failed_file(response: httpx.Response, files: int) -> tuple[int, str] | None:
    """The index and the error of the one file that failed a batch, from the error's `file` field
    ({index, filename, detail}); None when the error is not about one of the `files` sent."""
    try:
        file = response.json().get("file")
        index, detail = file["index"], file["detail"]
    except (ValueError, AttributeError, TypeError, KeyError):
        return None
    if not isinstance(index, int) or not 0 <= index < files or not isinstance(detail, str):
        return None
    return index, detail


def error_of(response: httpx.Response) -> tuple[str, str]:
    """The error's code and one-sentence detail, as /v1 renders them ({detail, code}), else the status."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return str(body.get("code", f"http_{response.status_code}")), body["detail"]
    text = response.text.strip().replace("\n", " ")[:200]
    return f"http_{response.status_code}", text or response.reason_phrase
