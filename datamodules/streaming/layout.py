"""What the writer and the readers of an export agree on: the index's name and format, and how a folder or URL
becomes a filesystem."""

from __future__ import annotations

import fsspec

from ..errors import DatasetError

INDEX = "index.json"
FORMAT = "talking-faces-webdataset/1"
EXPORT_HINT = "python -m datamodules.streaming export CACHE_DIR {url}"


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """fsspec's filesystem and path for a folder or URL, with the backend's absence explained."""
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as error:  # fsspec knows the scheme, its package is not installed
        raise DatasetError(
            f"{url}: this URL scheme needs an fsspec backend that is not installed ({error}). "
            "Install it (s3:// `pip install s3fs`, gs:// `pip install gcsfs`, "
            "az:// `pip install adlfs`) or copy the shards to a local folder."
        ) from None
    except ValueError as error:
        raise DatasetError(
            f"{url}: unknown URL scheme ({error}). Use a local folder, file://, or an fsspec URL "
            "such as s3://bucket/prefix, gs://bucket/prefix or https://host/prefix."
        ) from None
