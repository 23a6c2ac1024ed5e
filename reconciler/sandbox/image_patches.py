"""Images as AWS has them, and as a restarted sandbox must find them again.

- AWS: `DeregisterImage(DeleteAssociatedSnapshots=true)` deletes the snapshots the image was
  made of along with it (else they stay, and are billed). moto ignores the parameter and keeps
  them, so a tool that relies on it would leak snapshots on AWS while looking clean on the
  sandbox, or the other way round. The patch reads the image's EBS snapshots before moto
  deregisters it and deletes them after.
- CreateImage's image and snapshot IDs are derived from the account, region and image name
  (unique per account and region on AWS), not drawn from moto's seeded generator: a build runs
  beside other launches, whose requests the recording may hold in another order than they drew
  IDs, so a replay gave the image another ID and what names it (a compute environment's
  `imageIdOverride`) pointed at nothing after a restart.
"""

from __future__ import annotations

import hashlib
from typing import Any

from moto.ec2.models.amis import AmiBackend
from moto.ec2.responses.amis import AmisResponse

from reconciler.sandbox.patching import Patcher


class ImagePatches:
    def install(self, patcher: Patcher) -> None:
        self._deregister = patcher.replace(AmisResponse, "deregister_image", self.deregister)
        self._create = patcher.replace(AmiBackend, "create_image", self.create)

    def create(self, backend: Any, *args: Any, **kwargs: Any) -> Any:
        ami = self._create(backend, *args, **kwargs)
        drawn = ami.id
        seed = f"{backend.account_id}\0{backend.region_name}\0{ami.name}"
        digest = hashlib.sha256(seed.encode()).hexdigest()
        _rekey(backend, backend.amis, ami, f"ami-{digest[:17]}")
        snapshot = ami.ebs_snapshot
        _rekey(backend, backend.snapshots, snapshot, f"snap-{digest[17:34]}")
        snapshot.from_ami = ami.id
        snapshot.description = str(snapshot.description or "").replace(drawn, ami.id)
        return ami

    def deregister(self, response: AmisResponse) -> Any:
        backend = response.ec2_backend
        wanted = str(response._get_param("DeleteAssociatedSnapshots", "false")).lower() == "true"
        image = backend.amis.get(response._get_param("ImageId"))
        snapshots = []
        if wanted and image is not None:
            snapshots = [
                m["Ebs"]["SnapshotId"]
                for m in image.block_device_mappings or []
                if (m.get("Ebs") or {}).get("SnapshotId")
            ]
        result = self._deregister(response)
        for snapshot in snapshots:
            if snapshot in backend.snapshots:
                backend.delete_snapshot(snapshot)
        return result


def _rekey(backend: Any, table: dict[str, Any], item: Any, new: str) -> None:
    """Gives `item` the ID `new` in `table` and in the tags, which moto keeps by ID."""
    old = item.id
    table.pop(old, None)
    item.id = new
    table[new] = item
    if old in backend.tags:
        backend.tags[new] = backend.tags.pop(old)
