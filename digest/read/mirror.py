"""Offline sources: a feed file on disk, or a mirror folder of a blog's feeds.

A mirror folder holds feed files and a manifest.json mapping each URL (path and
query, relative to `base_url`) to its file, as the fixture builder writes it. Links
inside the feeds keep pointing at the real blog; this transport answers them from
the folder, so offline fetching runs the very same code as fetching over HTTP,
conditional GET included (the ETag is the file's size and modification time).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import httpx

from .errors import FetchError

MANIFEST = "manifest.json"
LOCAL_HOST = "mirror.invalid"   # stands for the folder itself: http://mirror.invalid/FILE


class MirrorTransport(httpx.BaseTransport):
    """An httpx transport that serves requests from files in one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self.urls = _read_manifest(self.folder)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = self._resolve(request.url)
        if path is None or not path.is_file():
            return httpx.Response(404, request=request)
        stat = path.stat()
        etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
        if request.headers.get("if-none-match") == etag:
            return httpx.Response(304, headers={"ETag": etag}, request=request)
        headers = {"ETag": etag, "Content-Type": _content_type(path)}
        return httpx.Response(200, headers=headers, content=path.read_bytes(), request=request)

    def _resolve(self, url: httpx.URL) -> Path | None:
        if url.host == LOCAL_HOST:
            candidate = (self.folder / unquote(url.path).lstrip("/")).resolve()
            return candidate if candidate.parent == self.folder else None
        relative = url.raw_path.decode("ascii")
        name = self.urls.get(relative) or self.urls.get(unquote(relative))
        return self.folder / Path(name).name if name else None


def start_url(location: str, root: Path) -> tuple[str, MirrorTransport]:
    """The URL to begin with for a local source, and the transport that answers it.

    `location` is a feed file, a file:// URL, or a mirror folder (its posts feed is
    then the first file the manifest lists under /feeds/posts/default).
    """
    path = Path(unquote(urlsplit(location).path)) if location.startswith("file:") else Path(location)
    path = (path if path.is_absolute() else root / path).resolve()
    if not path.exists():
        raise FetchError(f"{location}: no such file or folder; check the source's url ([[sources]].url)")
    folder = path if path.is_dir() else path.parent
    transport = MirrorTransport(folder)
    if path.is_dir():
        return _folder_start(folder, location), transport
    return f"http://{LOCAL_HOST}/{quote(path.name)}", transport


def _folder_start(folder: Path, location: str) -> str:
    """The posts feed of a mirror folder: the manifest's `start`, else the first URL that
    looks like a posts feed (Blogger's /feeds/posts/default, WordPress's /feed/ or
    /feed/atom/), else the first URL it lists."""
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8")) if (folder / MANIFEST).exists() else {}
    urls = [u for u in manifest.get("urls", {}) if "?" not in u]
    base = str(manifest.get("base_url", f"http://{LOCAL_HOST}")).rstrip("/")
    chosen = manifest.get("start") or next((u for u in urls if u.startswith("/feeds/posts/default")), None) \
        or next((u for u in urls if u.rstrip("/").endswith(("/feed", "/feed/atom", "/feed/rss2"))), None) \
        or (urls[0] if urls else None)
    if not chosen:
        raise FetchError(f"{location}: a folder source needs a {MANIFEST} listing its feeds (and a `start` "
                         "naming the posts feed); point the url at a feed file instead")
    return base + chosen


def _read_manifest(folder: Path) -> dict[str, str]:
    file = folder / MANIFEST
    if not file.exists():
        return {}
    try:
        return dict(json.loads(file.read_text(encoding="utf-8")).get("urls", {}))
    except (ValueError, AttributeError) as error:
        raise FetchError(f"{file}: not a valid manifest ({error}); rebuild the mirror") from None


def _content_type(path: Path) -> str:
    """JSON, or XML with no charset: the parser then follows the file's own BOM or XML
    declaration (UTF-16, ISO-8859-1...), as it would over HTTP, and UTF-8 without either."""
    return "application/json" if path.suffix == ".json" else "application/xml"
