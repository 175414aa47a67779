"""The tokens ``syncstream login`` stores for later commands, one per server.

In ``$XDG_CONFIG_HOME/syncstream/credentials.json`` (``~/.config/…`` by default), readable by its owner
only (0600, in a 0700 directory), as ``{"<server origin>": {"token": "…", "email": "…"}}``. The key is
the server's origin (``http://127.0.0.1:8000``), so any stream URL of that server finds its token.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import httpx
import orjson

__all__ = ["credentials_path", "forget_token", "origin", "save_token", "stored_token"]


def credentials_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "syncstream" / "credentials.json"


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, the key of its credentials."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{parsed.host}{port}"


def _load(path: Path) -> dict[str, Any]:
    try:
        value = orjson.loads(path.read_bytes())
    except OSError:  # none yet, or unreadable: no stored token (login rewrites it)
        return {}
    except orjson.JSONDecodeError:
        return {}  # a damaged file holds nothing usable; the next login rewrites it
    return value if isinstance(value, dict) else {}


def _store(path: Path, entries: dict[str, Any]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".credentials.", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(orjson.dumps(entries, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def save_token(url: str, token: str, email: str) -> Path:
    """Remember ``token`` for ``url``'s server; returns the file written."""
    path = credentials_path()
    entries = _load(path)
    entries[origin(url)] = {"token": token, "email": email}
    _store(path, entries)
    return path


def stored_token(url: str) -> str | None:
    """The token stored for ``url``'s server, if any."""
    entry = _load(credentials_path()).get(origin(url))
    token = entry.get("token") if isinstance(entry, dict) else None
    return token if isinstance(token, str) else None


def forget_token(url: str) -> bool:
    """Forget ``url``'s server; False if nothing was stored."""
    path = credentials_path()
    entries = _load(path)
    if entries.pop(origin(url), None) is None:
        return False
    _store(path, entries)
    return True
