import os

# Tests never touch the network: weights come from weights/ or a local Hugging Face cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The pipeline tests run the network in PyTorch (an OpenVINO conversion per clip size would
# cost seconds each); tests/test_backends.py covers OpenVINO, the default where installed.
os.environ.setdefault("VCGAN_BACKEND", "torch")


import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Twelve small colour photos: smooth colour fields with texture."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(12):
        base = cv2.resize(rng.random((6, 8, 3)).astype(np.float32), (200, 150), interpolation=cv2.INTER_CUBIC)
        detail = cv2.resize(rng.random((40, 50)).astype(np.float32), (200, 150))[..., None] * 0.3
        cv2.imwrite(str(folder / f"p{i:02d}.jpg"), (np.clip(base * 0.7 + detail, 0, 1) * 255).astype(np.uint8))
    return folder
