"""Development outbox: what the file backends would have sent, as files.

Several workers append to the same file at once. Each record is one line handed
to the kernel in one `write()` on a descriptor opened with O_APPEND, so lines of
two workers never interleave and none overwrites another (POSIX appends
atomically move the end of the file for every write).
"""

import dataclasses
import json
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder


def outbox_path(*parts: str) -> Path:
    """A path under CAMPAIGN_OUTBOX_DIR, its folders created."""
    path = Path(settings.CAMPAIGN_OUTBOX_DIR).joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def outbox_append_lines(path: Path, lines: Iterable[str]) -> None:
    """Append each line (a newline is added) with one write of its own."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        for line in lines:
            data = (line + "\n").encode()
            written = os.write(fd, data)
            if written != len(data):
                # Only a full disk or a signal writes short on a regular file.
                raise OSError(f"Short write to {path}: {written} of {len(data)}")
    finally:
        os.close(fd)


def outbox_append_json(name: str, record: dict[str, Any]) -> None:
    """Append one record as a JSON line to the outbox file `name`."""
    outbox_append_lines(
        outbox_path(name), [json.dumps(record, cls=DjangoJSONEncoder, sort_keys=True)]
    )


def outbox_send(name: str, message: Any, *, prefix: str) -> str:
    """What a development backend does for a provider: append `message` (a
    dataclass) as a JSON line to the outbox file `name`, under a made-up
    provider message id starting with `prefix`, and return that id."""
    provider_id = f"{prefix}-{uuid.uuid4().hex}"
    outbox_append_json(
        name, {"provider_message_id": provider_id, **dataclasses.asdict(message)}
    )
    return provider_id
