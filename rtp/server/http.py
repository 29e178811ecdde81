"""HTTP plumbing every route shares: reading a (gzipped) body within its limit, and the
one error body (Tinybird's ``{"error", "code", "documentation"}``)."""

from __future__ import annotations

import zlib

from fastapi import Request
from fastapi.responses import JSONResponse

from rtp.errors import RequestError, RtpError, http_status


def error_body(message: str, code: str, docs_url: str) -> dict:
    return {"error": message, "code": code, "documentation": f"{docs_url}#{code}"}


def error_response(exc: RtpError, settings, **extra) -> JSONResponse:
    """The error body for ``exc`` with its status (rtp.errors.http_status); ``extra``
    fields join it (``problems`` of a project with errors)."""
    message = exc.message + (f" ({exc.hint})" if exc.hint else "")
    return JSONResponse(
        {**error_body(message, exc.code, settings.docs_url), **extra}, status_code=http_status(exc)
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, gunzipped when sent with gzip.

    Raises RequestError 413 (RTP405) when it is larger than ``limit`` bytes, compressed or
    expanded, and 400 (RTP407) when the gzip stream is broken.
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    gzipped = "gzip" in request.headers.get("content-encoding", "").lower()
    if gzipped or body[:2] == b"\x1f\x8b":
        body = gunzip(body, limit)
    return body


def gunzip(data: bytes, limit: int) -> bytes:
    """Every member of a gzip stream (RFC 1952 allows several, concatenated), expanded.

    Raises RequestError 400 (RTP407) when the stream is truncated, broken, or followed by
    bytes that are not another member: the whole body is refused, nothing is stored. Raises
    413 (RTP405) as soon as the expanded size passes ``limit`` (never inflates more).
    """
    out, size = [], 0
    while True:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = inflater.decompress(data, limit + 1 - size)
            size += len(chunk)
            out.append(chunk)
            if size > limit or inflater.unconsumed_tail:
                raise _too_large(limit)
            if not inflater.eof:  # the member ends before its trailer (CRC, length)
                raise RequestError(
                    "the gzip body is truncated",
                    code="RTP407",
                    hint="send the whole compressed body",
                )
        except zlib.error as exc:
            raise RequestError(f"the body is not valid gzip: {exc}", code="RTP407") from None
        data = inflater.unused_data
        if not data:
            return b"".join(out)
        if data[:2] != b"\x1f\x8b":
            raise RequestError(
                f"the gzip body has {len(data)} byte(s) of trailing data "
                "that are not a gzip member",
                code="RTP407",
            )


def _too_large(limit: int) -> RequestError:
    return RequestError(
        f"the request body is larger than {limit} bytes",
        code="RTP405",
        hint="send the events in smaller requests",
    )
