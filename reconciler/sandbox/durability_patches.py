"""What a restarted sandbox needs from moto to come back exactly as it was.

The sandbox's state is moto's request recording, replayed by a new server (`manager`). A
replay recreates what the requests made only if every ID a later request names comes out the
same; moto draws some IDs from a seeded generator (the same if requests come in the same
order), and some from the operating system. Here:
- S3 multipart upload IDs (moto: os.urandom) are derived from the bucket, the key and how many
  uploads that key had before, so that the replayed UploadPart and CompleteMultipartUpload
  find their upload: large objects (the AWS CLI and boto3 upload anything over 8 MiB in
  parts, streams from stdin too) survive restarts as small ones do. Concurrent uploads to one
  key may swap IDs on replay; each still gets its own parts.
- Job IDs are derived from the SubmitJob request in the same way (`job_patches.job_id_for`),
  since concurrent submissions may be recorded in another order than they drew IDs.
- Every recorded request draws its random IDs from a generator of its own, seeded with its
  place in the recording (`request_streams`): a replay sends the recorded requests with that
  place in `REPLAY_HEADER`, so each draws what it drew when it was recorded, however it
  interleaved with others then.
- Requests are written to the recording one at a time: moto appends each from the thread that
  serves it, in two writes, so concurrent large requests (the parts of a multipart upload,
  several megabytes each, sent in parallel) interleaved and left a recording no replay reads.
- While the recording is replayed, the job scheduler is paused and the schedule clock held
  (nothing fires): moto does not record while it replays, so a job's own requests (a job
  process writing to S3) or a firing's SubmitJob made then would be lost at the next restart.
- A server that loaded a snapshot (`snapshot`, `covered` set by the server before it serves)
  replays only the recording's tail after what the snapshot covers.
- A state machine execution's own requests (its Batch states' SubmitJob) are not recorded
  (`states_patches`): the replayed StartExecution runs the execution again, which makes them
  again, and the replay waits for it to end before the requests recorded after it, as they
  came after it (a TerminateJob of one of its jobs finds the job).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from typing import Any
from urllib.parse import urlparse

import requests
from moto.moto_api._internal.recorder.models import Recorder
from moto.s3.models import S3Backend

from reconciler.sandbox.clock_api import PATH as CLOCK_PATH
from reconciler.sandbox.job_scheduler import JobScheduler
from reconciler.sandbox.patching import Patcher
from reconciler.sandbox.request_streams import RequestStreams
from reconciler.sandbox.schedule_firing import ScheduleClock
from reconciler.sandbox.seed import SEED_PATH
from reconciler.sandbox.snapshot import Covered
from reconciler.sandbox.states_patches import StatesPatches

UPLOADS_ATTR = "_sandbox_uploads"  # on moto's FakeBucket: uploads started, by key
REPLAY_HEADER = "x-reconciler-replayed"  # a replayed request's line in the recording, from 0
RECORDER_PATH = "/moto-api/recorder/"  # moto records none of these
STARTS = ("AWSStepFunctions.StartExecution", "AWSStepFunctions.StartSyncExecution")
# Seconds a replayed execution may go without a request before the replay goes on without it
# ending (a Wait state; a `.sync` state waits for jobs, which do not run during a replay).
EXECUTION_IDLE = 2.0


def upload_id(account: str, bucket: str, key: str, ordinal: int) -> str:
    """An upload ID of moto's shape (letters and digits), the same on every replay."""
    digest = hashlib.sha256(f"{account}\0{bucket}\0{key}\0{ordinal}".encode()).digest()
    text = base64.b64encode(digest * 2).decode()
    return text.replace("=", "").replace("+", "").replace("/", "")


class DurabilityPatches:
    """The patches above, for one server."""

    _create_multipart_upload: Any  # moto's originals, set by install()
    _record_request: Any
    _reset_recording: Any
    _upload_recording: Any

    def __init__(
        self, scheduler: JobScheduler, clock: ScheduleClock, states: StatesPatches
    ) -> None:
        self.scheduler = scheduler
        self.clock = clock
        self.states = states
        self.streams = RequestStreams()
        self._recording = threading.Lock()  # one request written to the recording at a time
        self._lines: int | None = None  # in the recording; None: count them when needed
        self._replaying = False  # REPLAY_HEADER counts only then: a client cannot skip recording
        self.covered: Covered | None = None  # the recording's prefix a loaded snapshot holds
        # The server holds all the recording says (it started without one, or replayed it):
        # only then may a snapshot stand for the whole recording (`server`).
        self.whole = False

    def install(self, patcher: Patcher) -> None:
        self.streams.install(patcher)
        self._create_multipart_upload = patcher.replace(
            S3Backend, "create_multipart_upload", self.create_multipart_upload
        )
        patcher.replace(Recorder, "replay_recording", self.replay_recording)
        self._record_request = patcher.replace(Recorder, "_record_request", self.record_request)
        self._reset_recording = patcher.replace(Recorder, "reset_recording", self.reset_recording)
        self._upload_recording = patcher.replace(
            Recorder, "upload_recording", self.upload_recording
        )

    def record_request(self, recorder: Any, *args: Any, **kwargs: Any) -> Any:
        """Records the request (moto: at its start, on the thread that serves it) and gives
        it its random stream."""
        request = args[0] if args else kwargs.get("request")
        path = str(getattr(request, "raw_path", "") or "")
        if path.startswith(SEED_PATH):
            self.streams.seeded(request)
        replayed = _replayed(request) if self._replaying else None
        if replayed is not None or path.startswith(CLOCK_PATH):
            # Recorded already; advancing the clock again on a replay would fire schedules again.
            self.streams.enter(replayed)
            return None
        if self.states.made(request):  # an execution's: its replayed start makes it again
            self.streams.enter(None)
            return None
        if not recorder._user_enabled or path.startswith(RECORDER_PATH):
            self.streams.enter(None)
            return self._record_request(recorder, *args, **kwargs)
        with self._recording:
            ordinal = self._lines if self._lines is not None else _count_lines(recorder._location)
            result = self._record_request(recorder, *args, **kwargs)
            self._lines = ordinal + 1
        self.streams.enter(ordinal)
        return result

    def reset_recording(self, recorder: Any) -> None:
        with self._recording:
            self._reset_recording(recorder)
            self._lines = None

    def upload_recording(self, recorder: Any, data: str | bytes) -> None:
        with self._recording:
            self._upload_recording(recorder, data)
            self._lines = None

    def create_multipart_upload(
        self, backend: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any
    ) -> Any:
        multipart = self._create_multipart_upload(backend, bucket_name, key_name, *args, **kwargs)
        bucket = backend.get_bucket(bucket_name)
        counts = bucket.__dict__.setdefault(UPLOADS_ATTR, {})
        ordinal = counts.get(key_name, 0)
        counts[key_name] = ordinal + 1
        bucket.multiparts.pop(multipart.id, None)
        multipart.id = upload_id(backend.account_id, bucket_name, key_name, ordinal)
        bucket.multiparts[multipart.id] = multipart
        return multipart

    def replay_recording(self, recorder: Any, target_host: str | None = None) -> None:
        """Nothing is run, fired or recorded while the recording is replayed."""
        self.scheduler.pause(True)
        try:
            with self.clock.held():
                self._replay(recorder, target_host)
            self.whole = True
        finally:
            self.scheduler.pause(False)

    def _replay(self, recorder: Any, target_host: str | None) -> None:
        """moto's replay, each request marked with its line (`REPLAY_HEADER`), over one
        connection; after a loaded snapshot, of the recording's tail only."""
        enabled, recorder._user_enabled = recorder._user_enabled, False
        self._replaying = True
        start = self.covered or Covered(0, 0, "")
        try:
            with requests.Session() as session, open(recorder._location, "rb") as recording:
                recording.seek(start.offset)
                for ordinal, row in enumerate(recording, start.lines):
                    entry = json.loads(row)
                    _send(session, entry, ordinal, target_host)
                    if (entry.get("headers") or {}).get("X-Amz-Target") in STARTS:
                        self.states.until_executions_end(EXECUTION_IDLE)
        finally:
            self._replaying = False
            recorder._user_enabled = enabled
            with self._recording:
                self._lines = None


def _send(session: requests.Session, entry: dict[str, Any], ordinal: int, host: str | None) -> None:
    """Sends one recorded request again, as moto's replay does."""
    body = entry.get("body", "{}")
    if entry.get("body_encoded"):
        body = base64.b64decode(body)
    url = str(entry.get("url"))
    if host is not None:
        target, recorded = urlparse(host), urlparse(url)
        url = f"{target.scheme}://{target.netloc}{recorded.path}"
        url = f"{url}?{recorded.query}" if recorded.query else url
    headers = dict(entry.get("headers") or {})
    if headers.get("Transfer-Encoding", "") == "chunked":
        del headers["Transfer-Encoding"]
    headers[REPLAY_HEADER] = str(ordinal)
    session.request(method=str(entry.get("method")), url=url, headers=headers, data=body)


def _replayed(request: Any) -> int | None:
    """The line of the recording a replayed request comes from; None for any other."""
    value = (getattr(request, "headers", None) or {}).get(REPLAY_HEADER)
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def _count_lines(path: str) -> int:
    if not os.path.exists(path):
        return 0
    with open(path, "rb") as recording:
        return sum(1 for _ in recording)
