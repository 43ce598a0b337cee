"""shoal/client: the API client (httpx over HTTPS with the cluster CA), for the CLI and the agent."""

from shoal.client.api import Client
from shoal.client.errors import ApiError, ForbiddenError, NotFoundError, UnauthorizedError, Unreachable

__all__ = ["ApiError", "Client", "ForbiddenError", "NotFoundError", "UnauthorizedError", "Unreachable"]
