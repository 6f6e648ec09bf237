"""A pipeline's code in transit from a remote CLI to a server: a gzipped tar of snapshot path -> file content."""

from __future__ import annotations

import base64
import binascii
import io
import tarfile
from collections.abc import Mapping
from pathlib import Path

from forgeline.errors import ForgelineError


def pack_code(files: Mapping[str, str]) -> str:
    """The files (snapshot path -> local file) as a base64 text of a gzipped tar, ready for a JSON body."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for relative, local in sorted(files.items()):
            archive.add(local, arcname=relative, recursive=False)
    return base64.b64encode(buffer.getvalue()).decode()


def unpack_code(text: str, dest: Path, max_bytes: int) -> dict[str, str]:
    """Extract an archive made by pack_code into ``dest``; snapshot path -> extracted file.

    Only regular files inside ``dest`` are accepted (the tar data filter); ForgelineError for anything else,
    or when the files add up to more than ``max_bytes``.
    """
    try:
        data = base64.b64decode(text.encode(), validate=True)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            members = archive.getmembers()
            if any(not member.isfile() for member in members):
                raise ForgelineError("the code archive may hold regular files only")
            total = sum(member.size for member in members)
            if total > max_bytes:
                raise ForgelineError(f"the pipeline's code is {total:,} bytes, over the server's limit of "
                                     f"{max_bytes:,} (FORGELINE_MAX_CODE_SIZE)")
            archive.extractall(dest, filter="data")
    except (binascii.Error, tarfile.TarError, OSError, EOFError) as exc:
        raise ForgelineError(f"the code archive could not be read ({exc}): send a base64 gzipped tar") from None
    return {member.name: str(dest / member.name) for member in members}
