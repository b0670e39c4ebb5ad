"""A small Hugging Face Hub on 127.0.0.1 for the publish and download tests.

It implements the endpoints huggingface_hub's upload and download paths call:

* ``POST /api/repos/create``                               create a repository (409 when it exists)
* ``POST /api/validate-yaml``                              check a README's YAML front matter
* ``POST /api/models/{repo}/preupload/{rev}``              regular or LFS, per file
* ``POST /{repo}.git/info/lfs/objects/batch``              LFS basic transfer: upload and verify URLs
* ``PUT  /lfs-upload/{oid}``, ``POST /lfs-verify/{oid}``    the LFS object itself (sha256-checked)
* ``POST /api/models/{repo}/commit/{rev}``                 the ndjson commit (header, file, lfsFile, deletedFile)
* ``POST /api/models/{repo}/tag/{rev}``                    create a tag (409 when it exists)
* ``GET  /api/models/{repo}[/revision/{rev}]``             repository info (sha, siblings)
* ``HEAD|GET /{repo}/resolve/{rev}/{path}``                files, with ``X-Repo-Commit``, ``ETag``,
  ``X-Linked-Etag`` / ``X-Linked-Size`` for LFS files

Commits are kept in memory; hashes are 40 hex digits derived from the content. ``fail``
makes one endpoint fail (HTTP 500, or a dropped connection) to test interrupted uploads.
The xet transfer protocol is not implemented: clients must set ``HF_HUB_DISABLE_XET=1``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"
LFS_THRESHOLD = 10 * 1024 * 1024


@dataclass
class Repo:
    """One repository: commits (oid -> {path: bytes}), branches and tags (name -> oid)."""

    repo_id: str
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    parents: dict[str, str | None] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> str | None:
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.tags:
            return self.tags[revision]
        matches = [oid for oid in self.commits if oid.startswith(revision)] if len(revision) >= 7 else []
        return matches[0] if len(matches) == 1 else None

    def add_commit(self, files: dict[str, bytes], parent: str | None, message: str) -> str:
        digest = hashlib.sha1()
        digest.update(f"{parent}\n{message}\n{len(self.commits)}\n".encode())
        for path in sorted(files):
            digest.update(f"{path} {hashlib.sha256(files[path]).hexdigest()}\n".encode())
        oid = digest.hexdigest()
        self.commits[oid] = dict(files)
        self.parents[oid] = parent
        return oid


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _is_lfs(path: str, size: int) -> bool:
    return path.endswith((".safetensors", ".bin")) or size >= LFS_THRESHOLD


class HubServer:
    """The loopback Hub. Use as a context manager; ``url`` is its endpoint.

    Attributes:
        repos: repo id -> :class:`Repo`.
        lfs: sha256 -> bytes of every uploaded LFS object.
        requests: ``(method, path)`` of every request, in order.
        fail: ``"ENDPOINT"`` or ``"ENDPOINT:ORG/NAME"`` (endpoints: ``"create"``, ``"preupload"``,
            ``"lfs-upload"``, ``"commit"``, ``"tag"``) -> ``"error"`` (HTTP 500) or ``"drop"``
            (close the connection without an answer).
    """

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.fail: dict[str, str] = {}
        self.lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "HubServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def create_repo(self, repo_id: str) -> Repo:
        repo = Repo(repo_id)
        oid = repo.add_commit({".gitattributes": GITATTRIBUTES}, None, "initial commit")
        repo.branches["main"] = oid
        self.repos[repo_id] = repo
        return repo


_REPO = r"(?P<repo>[^/]+/[^/]+?)"


def _make_handler(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        # ------------------------------------------------------------- plumbing
        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None,
                  content_type: str = "application/json") -> None:  # fmt: skip
            data = body if isinstance(body, bytes) else json.dumps(body if body is not None else {}).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _error(self, status: int, message: str, code: str | None = None) -> None:
            self._send(status, {"error": message}, {"X-Error-Code": code} if code else None)

        def _failing(self, endpoint: str, repo: str) -> bool:
            mode = hub.fail.get(f"{endpoint}:{repo}", hub.fail.get(endpoint))
            if mode == "drop":
                self.close_connection = True
                self.connection.shutdown(2)
                return True
            if mode == "error":
                self._error(500, f"injected failure of {endpoint}")
                return True
            return False

        def _route(self, method: str) -> None:
            path = urlsplit(self.path).path
            hub.requests.append((method, path))
            with hub.lock:
                for pattern, name in ROUTES.get(method, ()):
                    m = re.fullmatch(pattern, path)
                    if m:
                        getattr(self, name)(**{k: unquote(v) for k, v in m.groupdict().items()})
                        return
            self._error(404, f"no route for {method} {path}")

        def do_GET(self) -> None:
            self._route("GET")

        def do_HEAD(self) -> None:
            self._route("HEAD")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PUT(self) -> None:
            self._route("PUT")

        def _repo(self, repo: str) -> Repo | None:
            found = hub.repos.get(repo)
            if found is None:
                self._error(404, f"Repository {repo} not found", "RepoNotFound")
            return found

        def _revision(self, found: Repo, rev: str) -> str | None:
            oid = found.resolve(rev)
            if oid is None:
                self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
            return oid

        def _repo_at(self, repo: str, rev: str) -> tuple[Repo, str] | None:
            """The repository and the commit ``rev`` names; None once a 404 has been answered."""
            found = self._repo(repo)
            oid = None if found is None else self._revision(found, rev)
            return None if found is None or oid is None else (found, oid)

        def _json_for(self, endpoint: str, repo: str) -> tuple[dict[str, Any], Repo] | None:
            """The JSON body and the repository of a request; None once an error has been answered."""
            payload = json.loads(self._body())
            if self._failing(endpoint, repo):
                return None
            found = self._repo(repo)
            return None if found is None else (payload, found)

        # ------------------------------------------------------------- endpoints
        def create(self) -> None:
            payload = json.loads(self._body() or b"{}")
            repo_id = (
                f"{payload.get('organization')}/{payload['name']}" if payload.get("organization") else payload["name"]
            )
            if self._failing("create", repo_id):
                return
            if repo_id in hub.repos:
                self._error(409, "You already created this model repo")
                return
            hub.create_repo(repo_id)
            self._send(200, {"url": f"{hub.url}/{repo_id}", "name": repo_id, "id": repo_id})

        def validate_yaml(self) -> None:
            content = json.loads(self._body()).get("content", "")
            m = re.match(r"^---\n(.*?)\n---", content, flags=re.S)
            try:
                meta = yaml.safe_load(m.group(1)) if m else {}
                if meta is not None and not isinstance(meta, dict):
                    raise yaml.YAMLError("metadata is not a mapping")
            except yaml.YAMLError as err:
                self._send(400, {"errors": [{"message": str(err)}], "warnings": []})
                return
            self._send(200, {"errors": [], "warnings": []})

        def preupload(self, repo: str, rev: str) -> None:
            request = self._json_for("preupload", repo)
            if request is None:
                return
            payload, found = request
            files = [
                {"path": f["path"], "uploadMode": "lfs" if _is_lfs(f["path"], f["size"]) else "regular",
                 "shouldIgnore": False, "oid": None}
                for f in payload["files"]
            ]  # fmt: skip
            self._send(200, {"files": files, "commitOid": found.resolve(rev)})

        def lfs_batch(self, repo: str) -> None:
            payload = json.loads(self._body())
            if self._repo(repo) is None:
                return
            objects = []
            for obj in payload["objects"]:
                item: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
                if obj["oid"] not in hub.lfs:
                    item["actions"] = {
                        "upload": {"href": f"{hub.url}/lfs-upload/{repo}/{obj['oid']}"},
                        "verify": {"href": f"{hub.url}/lfs-verify/{obj['oid']}"},
                    }
                objects.append(item)
            self._send(200, {"transfer": "basic", "objects": objects}, content_type="application/vnd.git-lfs+json")

        def lfs_upload(self, repo: str, oid: str) -> None:
            data = self._body()
            if self._failing("lfs-upload", repo):
                return
            if hashlib.sha256(data).hexdigest() != oid:
                self._error(400, f"content does not match oid {oid}")
                return
            hub.lfs[oid] = data
            self._send(200, {})

        def lfs_verify(self, oid: str) -> None:
            payload = json.loads(self._body())
            ok = oid in hub.lfs and len(hub.lfs[oid]) == payload.get("size")
            self._send(200 if ok else 422, {} if ok else {"error": f"object {oid} is missing or has the wrong size"})

        def commit(self, repo: str, rev: str) -> None:
            lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
            if self._failing("commit", repo):
                return
            found = self._repo(repo)
            if found is None:
                return
            if rev not in found.branches:
                self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
                return
            parent = found.branches[rev]
            files = dict(found.commits[parent])
            header: dict[str, Any] = {}
            for item in lines:
                key, value = item["key"], item["value"]
                if key == "header":
                    header = value
                elif key == "file":
                    files[value["path"]] = base64.b64decode(value["content"])
                elif key == "lfsFile":
                    if value["oid"] not in hub.lfs:
                        self._error(422, f"LFS object {value['oid']} of {value['path']} was not uploaded")
                        return
                    files[value["path"]] = hub.lfs[value["oid"]]
                elif key in ("deletedFile", "deletedFolder"):
                    files = {
                        p: d
                        for p, d in files.items()
                        if p != value["path"] and not p.startswith(value["path"].rstrip("/") + "/")
                    }
            if header.get("parentCommit") and header["parentCommit"] != parent:
                self._error(412, "A commit has happened since. Please refresh and try again.")
                return
            oid = found.add_commit(files, parent, header.get("summary", ""))
            found.branches[rev] = oid
            self._send(200, {"commitUrl": f"{hub.url}/{repo}/commit/{oid}", "commitOid": oid,
                             "pullRequestUrl": None, "success": True})  # fmt: skip

        def tag(self, repo: str, rev: str) -> None:
            request = self._json_for("tag", repo)
            if request is None:
                return
            payload, found = request
            oid = self._revision(found, rev)
            if oid is None:
                return
            if payload["tag"] in found.tags:
                self._error(409, f"Tag {payload['tag']} already exists")
                return
            found.tags[payload["tag"]] = oid
            self._send(200, {})

        def info(self, repo: str, rev: str = "main") -> None:
            at = self._repo_at(repo, rev)
            if at is None:
                return
            found, oid = at
            self._send(200, {"id": repo, "modelId": repo, "sha": oid, "private": False, "tags": [],
                             "siblings": [{"rfilename": p} for p in sorted(found.commits[oid])]})  # fmt: skip

        def resolve(self, repo: str, rev: str, file: str) -> None:
            at = self._repo_at(repo, rev)
            if at is None:
                return
            found, oid = at
            data = found.commits[oid].get(file)
            if data is None:
                self._error(404, f"Entry {file} not found", "EntryNotFound")
                return
            headers = {"X-Repo-Commit": oid, "ETag": f'"{_git_blob_sha1(data)}"', "Accept-Ranges": "bytes"}
            if _is_lfs(file, len(data)):
                sha = hashlib.sha256(data).hexdigest()
                headers.update({"ETag": f'"{sha}"', "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data))})
            self._send(200, data, headers, content_type="application/octet-stream")

    ROUTES: dict[str, list[tuple[str, str]]] = {
        "POST": [
            (r"/api/repos/create", "create"),
            (r"/api/validate-yaml", "validate_yaml"),
            (rf"/api/models/{_REPO}/preupload/(?P<rev>[^/]+)", "preupload"),
            (rf"/api/models/{_REPO}/commit/(?P<rev>[^/]+)", "commit"),
            (rf"/api/models/{_REPO}/tag/(?P<rev>[^/]+)", "tag"),
            (rf"/{_REPO}\.git/info/lfs/objects/batch", "lfs_batch"),
            (r"/lfs-verify/(?P<oid>[0-9a-f]{64})", "lfs_verify"),
        ],
        "PUT": [(rf"/lfs-upload/{_REPO}/(?P<oid>[0-9a-f]{{64}})", "lfs_upload")],
        "GET": [
            (rf"/api/models/{_REPO}/revision/(?P<rev>[^/]+)", "info"),
            (rf"/api/models/{_REPO}", "info"),
            (rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", "resolve"),
        ],
        "HEAD": [(rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", "resolve")],
    }
    return Handler


__all__ = ["HubServer", "Repo"]
