"""The ingress node's intermediate CA: an agent sends a CSR, the server signs it (control/api).

Only an ingress node of a cluster with internal TLS gets one, for its own name; the ingress
root's key stays in the server's data dir, so no node ever holds it. The agent asks again well
before its intermediate ends (shoal.agent.reconcilers.ingress_ca).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from shoal.control import auth, pki
from shoal.control.api.common import body, ctx, node_caller
from shoal.control.store import nodes
from shoal.errors import ConfigError, Conflict
from shoal.model.ingress_ca import IntermediateCert, IntermediateRequest

bp = Blueprint("ingress_ca", __name__, url_prefix="/api/v1")


@bp.post("/nodes/<name>/ingress-ca")
def sign_intermediate(name: str) -> Response:
    node_caller(name)
    req = body(IntermediateRequest)
    config = ctx().config
    if config.ingress_tls != "internal":
        raise Conflict("this cluster's ingress uses ACME: there is no internal CA to sign with")
    with ctx().db.transaction() as conn:
        row = nodes.get(conn, name)
    if row is None or not row["ingress"]:
        raise auth.Forbidden(f"node {name} is not an ingress node")
    if not config.ingress_ca_key.exists():
        raise Conflict(f"this server holds no ingress root key ({config.ingress_ca_key})")
    try:
        pem = pki.sign_intermediate(config.ingress_ca_cert, config.ingress_ca_key, req.csr_pem, name)
    except pki.CsrError as exc:
        raise ConfigError(str(exc)) from exc
    return jsonify(IntermediateCert(certificate_pem=pem).model_dump())
