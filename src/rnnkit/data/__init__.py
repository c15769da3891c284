"""Datasets (download + checksum + cache), tokenizers, windows, audio features."""

from rnnkit.data.download import RemoteFile, cache_dir, fetch, sha256_of

__all__ = ["RemoteFile", "cache_dir", "fetch", "sha256_of"]
