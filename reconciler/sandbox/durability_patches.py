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
- Requests are written to the recording one at a time: moto appends each from the thread that
  serves it, in two writes, so concurrent large requests (the parts of a multipart upload,
  several megabytes each, sent in parallel) interleaved and left a recording no replay reads.
- While the recording is replayed, the job scheduler is paused and the schedule clock held
  (nothing fires): moto does not record while it replays, so a job's own requests (a job
  process writing to S3) or a firing's SubmitJob made then would be lost at the next restart.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from typing import Any

from moto.moto_api._internal.recorder.models import Recorder
from moto.s3.models import S3Backend

from reconciler.sandbox.clock_api import PATH as CLOCK_PATH
from reconciler.sandbox.job_scheduler import JobScheduler
from reconciler.sandbox.patching import Patcher
from reconciler.sandbox.schedule_firing import ScheduleClock

UPLOADS_ATTR = "_sandbox_uploads"  # on moto's FakeBucket: uploads started, by key


def upload_id(account: str, bucket: str, key: str, ordinal: int) -> str:
    """An upload ID of moto's shape (letters and digits), the same on every replay."""
    digest = hashlib.sha256(f"{account}\0{bucket}\0{key}\0{ordinal}".encode()).digest()
    text = base64.b64encode(digest * 2).decode()
    return text.replace("=", "").replace("+", "").replace("/", "")


class DurabilityPatches:
    """The patches above, for one server."""

    _create_multipart_upload: Any  # moto's originals, set by install()
    _replay_recording: Any
    _record_request: Any

    def __init__(self, scheduler: JobScheduler, clock: ScheduleClock) -> None:
        self.scheduler = scheduler
        self.clock = clock
        self._recording = threading.Lock()  # one request written to the recording at a time

    def install(self, patcher: Patcher) -> None:
        self._create_multipart_upload = patcher.replace(
            S3Backend, "create_multipart_upload", self.create_multipart_upload
        )
        self._replay_recording = patcher.replace(
            Recorder, "replay_recording", self.replay_recording
        )
        self._record_request = patcher.replace(Recorder, "_record_request", self.record_request)

    def record_request(self, recorder: Any, *args: Any, **kwargs: Any) -> Any:
        path = str(getattr(args[0] if args else kwargs.get("request"), "raw_path", "") or "")
        if path.startswith(CLOCK_PATH):
            return None  # advancing the clock again on a replay would fire schedules again
        with self._recording:
            return self._record_request(recorder, *args, **kwargs)

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

    def replay_recording(self, recorder: Any, *args: Any, **kwargs: Any) -> Any:
        self.scheduler.pause(True)
        try:
            with self.clock.held():
                return self._replay_recording(recorder, *args, **kwargs)
        finally:
            self.scheduler.pause(False)
