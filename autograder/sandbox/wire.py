"""Framing between the trusted parent and a sandboxed child.

A frame is a fixed header `!II` (JSON length, payload length), a JSON object, then the raw bytes of
the tensors the JSON describes (`{"dtype": "float64", "shape": [5, 3]}` in order). Nothing is ever
unpickled: a hostile child can only send bytes that are checked against a dtype allow-list, a shape
and a size cap, so the worst it can do is send wrong numbers.
"""
from __future__ import annotations

import json
import socket
import struct
import time

import torch

_HEADER = struct.Struct("!II")
MAX_JSON_BYTES = 4 << 20
MAX_PAYLOAD_BYTES = 256 << 20
MAX_DIMS = 16  # torch.empty overflows (TypeError, not WireError) on absurd shapes
DTYPES = {
    "float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
    "int64": torch.int64, "int32": torch.int32, "bool": torch.bool, "uint8": torch.uint8,
}
DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}


class WireError(Exception):
    """The other side sent something that is not a valid frame (or hung up)."""


class FrameTooLarge(WireError):
    """A frame over the receiver's size limit (refused from its header, before reading it)."""


def plain_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """The data of a tensor (or of a subclass) as a plain torch.Tensor, without running a
    subclass's __torch_function__ or its overridden methods (student code, in a child)."""
    if type(tensor) is torch.Tensor:  # most outputs: nothing of a subclass to step around
        return tensor.detach().cpu().contiguous()
    with torch._C.DisableTorchFunctionSubclass():
        return torch.Tensor.as_subclass(torch.Tensor.detach(tensor), torch.Tensor).cpu().contiguous()


def encode_tensor(tensor: torch.Tensor) -> tuple[dict, bytes]:
    """Describe a tensor and return its raw bytes. Unknown dtypes travel as a description only."""
    plain = plain_tensor(tensor)
    name = DTYPE_NAMES.get(plain.dtype)
    if name is None:
        return {"unsupported_dtype": str(plain.dtype), "shape": list(plain.shape)}, b""
    data = plain.numpy().tobytes()  # C order: plain is contiguous
    return {"dtype": name, "shape": list(plain.shape)}, data


def _dtype(spec: dict):
    """The allowed dtype a description names, or None (the name may be any JSON value)."""
    name = spec.get("dtype")
    return DTYPES.get(name) if isinstance(name, str) else None


def decode_tensor(spec: dict, data: bytes) -> torch.Tensor:
    dtype = _dtype(spec)
    shape = spec.get("shape")
    if (dtype is None or not isinstance(shape, list) or len(shape) > MAX_DIMS
            or not all(type(d) is int and 0 <= d < 1 << 31 for d in shape)):
        raise WireError(f"bad tensor description {str(spec)[:80]}")
    count = 1
    for dim in shape:
        count *= dim
    if count * dtype.itemsize != len(data):
        raise WireError("tensor size does not match its shape")
    try:
        if count == 0:
            return torch.empty(shape, dtype=dtype)
        return torch.frombuffer(bytearray(data), dtype=dtype).reshape(shape)
    except (RuntimeError, TypeError, ValueError) as bad:  # e.g. an empty shape whose strides overflow
        raise WireError(f"bad tensor shape ({str(bad)[:80]})") from None


def encode_json(message: dict) -> bytes:
    """A frame's JSON as UTF-8, not \\u-escaped: text costs its own size (a non-ASCII comment 2 or 3
    bytes a character, not 6: a 1.4 MB .py no longer outgrows the 4 MB frame); a lone surrogate,
    which UTF-8 cannot hold, becomes '?'."""
    return json.dumps(message, allow_nan=True, ensure_ascii=False).encode("utf-8", "replace")


def encode_tensors(tensors: list[torch.Tensor]) -> tuple[list[dict], bytes]:
    """The descriptions and the joined raw bytes of `tensors`, ready for send(encoded=...): a
    sender that sends the same tensors many times (the parent, every probe's inputs to every
    child) encodes them once."""
    specs, blobs = [], []
    for tensor in tensors:
        spec, blob = encode_tensor(tensor)
        specs.append(spec)
        blobs.append(blob)
    return specs, b"".join(blobs)


def send(sock: socket.socket, message: dict, tensors: list[torch.Tensor] = (),
         encoded: tuple[list[dict], bytes] | None = None) -> None:
    specs, payload = encoded if encoded is not None else encode_tensors(tensors)
    body = encode_json({**message, "tensors": specs})
    if len(body) > MAX_JSON_BYTES:  # never send what the receiver refuses unread (it would hang up: EPIPE)
        raise FrameTooLarge(f"{len(body) / 2**20:.1f} MB")
    sock.sendall(_HEADER.pack(len(body), len(payload)) + body + payload)


def _read_exact(sock: socket.socket, size: int, deadline: float | None) -> bytes:
    chunks, remaining = [], size
    while remaining:
        if deadline is not None:  # a whole-frame deadline: a child dripping one byte at a time gains nothing
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("the frame did not arrive in time")
            sock.settimeout(left)
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise WireError("connection closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def receive(sock: socket.socket, deadline: float | None = None,
            max_bytes: int = MAX_JSON_BYTES + MAX_PAYLOAD_BYTES) -> tuple[dict, list]:
    """Read one frame. Returns the JSON object and its tensors (None for unsupported ones).

    deadline: time.monotonic() by which the whole frame must have arrived, else socket.timeout.
    max_bytes: larger frames raise FrameTooLarge (the parent passes a small limit for a child's frames)."""
    json_size, payload_size = _HEADER.unpack(_read_exact(sock, _HEADER.size, deadline))
    if json_size > MAX_JSON_BYTES or payload_size > MAX_PAYLOAD_BYTES or json_size + payload_size > max_bytes:
        raise FrameTooLarge(f"frame of {(json_size + payload_size) >> 20} MB")
    try:
        message = json.loads(_read_exact(sock, json_size, deadline))
    except (ValueError, RecursionError):  # not UTF-8 or JSON, an int of 5000 digits; deep nesting
        raise WireError("frame is not JSON") from None
    payload = _read_exact(sock, payload_size, deadline)
    if not isinstance(message, dict) or not isinstance(message.get("tensors"), list):
        raise WireError("frame has no tensor list")
    tensors, offset = [], 0
    for spec in message.pop("tensors"):
        if not isinstance(spec, dict):
            raise WireError("bad tensor description")
        if "unsupported_dtype" in spec:
            tensors.append(None)
            continue
        dtype = _dtype(spec)
        size = 0
        if dtype is not None and isinstance(spec.get("shape"), list):
            size = dtype.itemsize
            for dim in spec["shape"]:
                size *= dim if type(dim) is int else 0
        tensors.append(decode_tensor(spec, payload[offset:offset + size]))
        offset += size
    if offset != len(payload):
        raise WireError("payload longer than its tensors")
    return message, tensors
