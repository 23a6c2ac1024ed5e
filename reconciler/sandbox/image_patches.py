"""DeregisterImage deletes the image's snapshots when asked, as AWS does.

AWS: `DeregisterImage(DeleteAssociatedSnapshots=true)` deletes the snapshots the image was made
of along with it (else they stay, and are billed). moto ignores the parameter and keeps them,
so a tool that relies on it would leak snapshots on AWS while looking clean on the sandbox, or
the other way round. The patch reads the image's EBS snapshots before moto deregisters it and
deletes them after.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.responses.amis import AmisResponse

from reconciler.sandbox.patching import Patcher


class ImagePatches:
    def install(self, patcher: Patcher) -> None:
        self._deregister = patcher.replace(AmisResponse, "deregister_image", self.deregister)

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
