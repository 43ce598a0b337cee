"""shoal/client: the API client (httpx over HTTPS with the cluster CA), for the CLI and the agent."""

from shoal.client.api import Client
from shoal.client.errors import ApiError, Forbidden, NotFoundError, Unauthorized, Unreachable

__all__ = ["ApiError", "Client", "Forbidden", "NotFoundError", "Unauthorized", "Unreachable"]
