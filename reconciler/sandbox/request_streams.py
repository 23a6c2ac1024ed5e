"""Random draws that do not depend on how concurrent requests interleaved.

moto draws IDs from one seeded generator that every thread shares: instance, reservation,
volume and security-group IDs, and a request ID for every reply, reads included. A restart
replays the recording one request at a time, in the order the requests were recorded; the
server that recorded them served them concurrently, so two of them could draw in the other
order. In the example stack an EC2 task's RunInstances and the image builder's
CreateSecurityGroup ran side by side: on replay the group got another ID, the builder's
recorded RunInstances named a group that did not exist, so did its CreateImage's instance,
and the image (and the compute environment that uses it) was gone after the restart.

Here each recorded request draws from a generator of its own, seeded with the sandbox's seed
and the request's place in the recording: the same on the server that records it and on the
one that replays it, however its neighbours interleaved. Draws made outside a recorded
request (the job scheduler's thread) use moto's shared generator, as before.

A recording is replayed the way it was made: the streams are used only by a server seeded
with `seed.SEED_QUERY` (the recording's first request says so), so a recording made before
them still replays with moto's shared generator.
"""

from __future__ import annotations

import random
import threading
from typing import Any

from moto.moto_api._internal.moto_random import MotoRandom

from reconciler.sandbox.patching import Patcher
from reconciler.sandbox.seed import STREAMS_PARAM, STREAMS_VALUE


class RequestStreams:
    """The per-request generators of one server."""

    _random: Any  # moto's originals, set by install()
    _getrandbits: Any

    def __init__(self) -> None:
        self.seed: int | None = None  # set by a seed request that asks for streams
        self._local = threading.local()

    def install(self, patcher: Patcher) -> None:
        # random.Random's other methods (choice, uuid4, shuffle...) all come down to these two.
        self._random = patcher.replace(MotoRandom, "random", self.random)
        self._getrandbits = patcher.replace(MotoRandom, "getrandbits", self.getrandbits)

    def seeded(self, request: Any) -> None:
        """Notes a seed request: streams from now on if it asks for them, else moto's way."""
        args = getattr(request, "args", None) or {}
        try:
            wanted = args.get(STREAMS_PARAM) == STREAMS_VALUE
            self.seed = int(args.get("a")) if wanted else None
        except (TypeError, ValueError):  # moto refuses a bad seed itself
            self.seed = None

    def enter(self, ordinal: int | None) -> None:
        """The current thread serves the request at `ordinal` in the recording (None: one that
        is not recorded, whose draws are moto's shared generator's)."""
        seed = self.seed
        if ordinal is None or seed is None:
            self._local.stream = None
        else:
            self._local.stream = random.Random(f"{seed}\0{ordinal}")

    def random(self, generator: Any) -> float:
        stream = getattr(self._local, "stream", None)
        return stream.random() if stream is not None else float(self._random(generator))

    def getrandbits(self, generator: Any, k: int) -> int:
        stream = getattr(self._local, "stream", None)
        return stream.getrandbits(k) if stream is not None else int(self._getrandbits(generator, k))
