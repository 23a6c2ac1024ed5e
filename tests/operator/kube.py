"""A Kubernetes API for the operator tests: KMock's emulator with the gaps kopf needs closed.

kmock 0.8's KubernetesEmulator stores objects and serves lists, watches and patches over HTTP,
but gives objects no uid, resourceVersion, generation or creationTimestamp, answers a failed
JSON-patch `test` with 500 (kopf then retries its finalizer patch forever), does not keep the
status subresource apart, ignores `generateName`, and fails on `GET /api/v1/namespaces` (its
path parser expects a namespace after `namespaces`), which kopf reads in namespaced mode.
`Emulator` fills those in:
- namespaces: `GET /api/v1/namespaces` lists `Emulator.namespaces`; a watch of it stays open
  with no events;
- create: uid, resourceVersion, generation 1, creationTimestamp, a name from generateName;
- patch (merge or JSON): a new resourceVersion each time; generation +1 when the spec changes;
  a patch of /status changes only the status and a patch of the object never does (for the
  resources declared with a status subresource); a failed JSON patch is 422;
- delete of an object with finalizers: deletionTimestamp and a new resourceVersion.

kmock keeps every request it served, and matches each new one against its reactions by
walking that whole log (`request in payload._source` is a scan by identity, once per
reaction): a request costs time in proportion to all the requests before it (5 ms with an
empty log, about 90 ms after 1,000 requests on this machine), so a benchmark with hundreds of
objects slows to seconds a request. `keep_requests=False` drops each request from the log once
served (the tests read the log; the benchmarks do not) and keeps only what they need: which
resources were watched and how many requests of each method were served.

It runs in a thread with its own event loop (`Cluster`); the tests talk to it over HTTP with
`Client`, exactly as kubectl would.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import datetime
import json
import secrets
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import jsonpointer
import kmock
from kmock._internal import apps, dicts

from reconciler import API_VERSION
from reconciler.registry import models


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@attrs.define(kw_only=True)
class Emulator(kmock.KubernetesEmulator):
    namespaces: set[str] = attrs.field(factory=lambda: {"default"})
    keep_requests: bool = True
    watched: set[str] = attrs.field(factory=set, init=False)  # paths of watch requests
    served: collections.Counter[str] = attrs.field(factory=collections.Counter, init=False)
    _version: int = attrs.field(default=0, init=False)

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if raw_request.path.rstrip("/") != "/api/v1/namespaces":
            return await super().__call__(raw_request)
        if raw_request.query.get("watch") == "true":
            response = aiohttp.web.StreamResponse()
            await response.prepare(raw_request)
            await asyncio.sleep(float(raw_request.query.get("timeoutSeconds") or 3600))
            return response
        items = [{"metadata": {"name": ns}} for ns in sorted(self.namespaces)]
        return aiohttp.web.json_response(
            {"apiVersion": "v1", "kind": "NamespaceList", "metadata": {}, "items": items}
        )

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    def _has_status(self, resource: Any) -> bool:
        info = self.resources.get(resource) if hasattr(self.resources, "get") else None
        return bool(info and "status" in (info.subresources or ()))

    async def _handle(self, request: Any) -> Any:
        self.served[str(request.method.value).upper()] += 1
        if request.params.get("watch") == "true":
            self.watched.add(str(request.url.path))
        try:
            return await self._handle_kept(request)
        finally:
            if not self.keep_requests:  # served: out of the log the next requests are matched in
                log = self._requests
                for at in range(len(log) - 1, -1, -1):
                    if log[at] is request:
                        del log[at]
                        break

    async def _handle_kept(self, request: Any) -> Any:
        if request.resource is not None:
            if request.action == kmock.action.CREATE and isinstance(request.data, dict):
                meta = request.data.setdefault("metadata", {})
                if not meta.get("name") and meta.get("generateName"):
                    meta["name"] = meta["generateName"] + secrets.token_hex(4)
                if request.namespace and not meta.get("namespace"):
                    meta["namespace"] = request.namespace
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("creationTimestamp", _now())
                meta["generation"] = 1
                meta["resourceVersion"] = self._next_version()
            elif request.action == kmock.action.UPDATE and request.name is not None:
                return await self._patch(request)
            elif (
                request.action == kmock.action.DELETE
                and request.name is not None
                and await self._mark_deleted(request)
            ):
                return await apps.RawHandler._handle(self, request)
        return await super()._handle(request)

    def _object(self, request: Any) -> Any:
        key = (request.resource, request.namespace, request.name)
        if key not in self._objects or self._objects[key].deleted:
            raise kmock.KubernetesObjectNotFoundError()
        return key, self._objects[key]

    async def _patch(self, request: Any) -> Any:
        gone = None
        async with self._lock:
            key, obj = self._object(request)
            old = copy.deepcopy(obj.raw)
            try:
                new = dict(dicts.patch_dict(copy.deepcopy(old), request.data or {}))
            except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
                raise kmock.KubernetesError(
                    status=422, reason="Invalid", message=str(exc)
                ) from None
            except (ValueError, TypeError) as exc:
                raise kmock.KubernetesError(
                    status=400, reason="BadRequest", message=str(exc)
                ) from None
            if self._has_status(request.resource):
                if request.subresource == "status":
                    new = {**old, "status": new.get("status")}
                    if new["status"] is None:
                        del new["status"]
                else:
                    new.pop("status", None)
                    if "status" in old:
                        new["status"] = old["status"]
            meta = new.setdefault("metadata", {})
            if new.get("spec") != old.get("spec"):
                meta["generation"] = int(meta.get("generation") or 1) + 1
            meta["resourceVersion"] = self._next_version()
            obj.history.append(new)
            await self._buses[request.resource].put({"type": "MODIFIED", "object": new})
            if meta.get("deletionTimestamp") and not meta.get("finalizers"):
                gone = key
        try:
            return await apps.RawHandler._handle(self, request)
        finally:
            if gone is not None:
                async with self._lock:
                    raw = self._objects[gone].raw
                    self._objects[gone].delete()
                    await self._buses[request.resource].put({"type": "DELETED", "object": raw})

    async def _mark_deleted(self, request: Any) -> bool:
        """Sets deletionTimestamp on an object with finalizers; False if it goes at once."""
        async with self._lock:
            _key, obj = self._object(request)
            meta = obj.raw.get("metadata", {})
            if not meta.get("finalizers"):
                return False
            if meta.get("deletionTimestamp"):
                return True
            new = copy.deepcopy(obj.raw)
            new["metadata"]["deletionTimestamp"] = _now()
            new["metadata"]["resourceVersion"] = self._next_version()
            obj.history.append(new)
            await self._buses[request.resource].put({"type": "MODIFIED", "object": new})
            return True


def declare(k8s: Emulator) -> None:
    k8s.resources.load_bundled()  # v1/namespaces, v1/events and the other built-ins
    verbs = {"get", "list", "watch", "create", "update", "patch", "delete"}
    for kind, model in models().items():
        k8s.resources[f"{API_VERSION}/{model.PLURAL}"] = kmock.ResourceInfo(
            kind=kind,
            singular=kind.lower(),
            namespaced=True,
            verbs=verbs,
            subresources={"status"},
        )


class Cluster:
    """The emulator on a loopback port, served from its own thread and event loop."""

    def __init__(self, namespaces: set[str] | None = None, keep_requests: bool = True) -> None:
        self.namespaces = set(namespaces or ()) | {"default"}
        self.keep_requests = keep_requests
        self.k8s: Emulator | None = None
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._main, name="kmock", daemon=True)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with (
            Emulator(namespaces=self.namespaces, keep_requests=self.keep_requests) as k8s,
            kmock.Server(k8s) as server,
        ):
            declare(k8s)
            self.k8s = k8s
            self.url = str(server.url).rstrip("/")
            self._started.set()
            await self._stop.wait()

    def start(self) -> Cluster:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the Kubernetes emulator did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def watching(self, plural: str) -> bool:
        """Whether a watch request for the resource has arrived (kopf is subscribed)."""
        assert self.k8s is not None
        return any(f"/{plural}" in path for path in list(self.k8s.watched))

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": "kmock",
                            "cluster": {"server": self.url, "insecure-skip-tls-verify": True},
                        }
                    ],
                    "users": [{"name": "tester", "user": {"token": "not-a-secret"}}],
                    "contexts": [
                        {"name": "kmock", "context": {"cluster": "kmock", "user": "tester"}}
                    ],
                    "current-context": "kmock",
                }
            )
        )
        return path


class ApiError(Exception):
    def __init__(self, code: int, body: str):
        super().__init__(f"HTTP {code}: {body[:300]}")
        self.code = code


class Client:
    """What a test does with kubectl: create, patch, delete, read custom resources."""

    def __init__(self, url: str):
        self.url = url

    def _request(self, method: str, path: str, body: Any = None, ctype: str = "") -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", ctype or "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, exc.read().decode(errors="replace")) from None

    @staticmethod
    def path(kind: str, namespace: str, name: str | None = None) -> str:
        base = f"/apis/{API_VERSION}/namespaces/{namespace}/{models()[kind].PLURAL}"
        return f"{base}/{name}" if name else base

    def create(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(manifest)
        body.setdefault("metadata", {})["namespace"] = namespace
        return self._request("POST", self.path(body["kind"], namespace), body)

    def patch(self, kind: str, namespace: str, name: str, body: dict[str, Any]) -> Any:
        return self._request(
            "PATCH", self.path(kind, namespace, name), body, "application/merge-patch+json"
        )

    def delete(self, kind: str, namespace: str, name: str) -> Any:
        return self._request("DELETE", self.path(kind, namespace, name))

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._request("GET", self.path(kind, namespace, name))
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def events(self, namespace: str) -> list[dict[str, Any]]:
        items = self._request("GET", f"/api/v1/namespaces/{namespace}/events") or {}
        return list(items.get("items") or [])


@contextmanager
def cluster(namespaces: set[str] | None = None, keep_requests: bool = True) -> Iterator[Cluster]:
    running = Cluster(namespaces, keep_requests).start()
    try:
        yield running
    finally:
        running.stop()
