"""Images: pull with skopeo into a digest-verified store, unpack layers safely for overlayfs."""

from shoal.agent.images.errors import ImageError
from shoal.agent.images.store import ImageStore, PulledImage

__all__ = ["ImageError", "ImageStore", "PulledImage"]
