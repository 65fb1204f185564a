import os

# Tests never touch the network: weights come from weights/ or a local Hugging Face cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
