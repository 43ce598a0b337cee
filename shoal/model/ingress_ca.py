"""The ingress node's intermediate CA request and answer (model; agent → control → agent).

With internal TLS, each ingress node keeps its own intermediate key and sends only a certificate
request; the server signs it with the cluster's ingress root, whose key never leaves the server.
"""

from __future__ import annotations

from pydantic import Field

from shoal.model.base import Wire


class IntermediateRequest(Wire):
    csr_pem: str = Field(max_length=8000)


class IntermediateCert(Wire):
    certificate_pem: str
