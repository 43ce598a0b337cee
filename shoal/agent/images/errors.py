"""The one error the image store raises: a single line naming the image, layer and entry."""

from __future__ import annotations

from shoal.errors import ShoalError


class ImageError(ShoalError):
    """An image could not be pulled, verified or unpacked safely."""
