"""The node policy: strict parsing, the grant per role/project, path normalisation, and its checks
of a deploy file (every refusal names key, line and the policy entry)."""

from __future__ import annotations

import textwrap

import pytest

from shoal.model.compose import PolicyRefused, parse_compose
from shoal.model.policy import (
    Grant,
    PolicyError,
    covers,
    forbidden_paths,
    grant_for,
    normalise,
    parse_policy,
)

SAMPLE = textwrap.dedent(
    """\
    metadata: true
    grants:
      - name: monitoring agents
        projects: [monitoring]
        cap_add: [SYS_PTRACE]
        pid_host: true
        binds:
          - {path: /var/log, mode: ro}
      - name: admins
        roles: [admin]
        privileged: true
        devices: [/dev/fuse]
        security_opt: [seccomp=unconfined, no-new-privileges:false]
        sysctls: [net.ipv4.ip_forward]
        network_mode_host: true
        userns_mode: true
        binds:
          - path: /srv/data/
            mode: rw
    """
)
FORBIDDEN = forbidden_paths("/srv/shoal-data")


def test_sample_parses_and_normalises() -> None:
    doc = parse_policy(SAMPLE)
    assert doc.metadata is True
    assert doc.grants[0].cap_add == ["CAP_SYS_PTRACE"]
    assert doc.grants[1].binds[0].path == "/srv/data"
    assert parse_policy("").grants == [] and parse_policy("# nothing\n").metadata is False


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("grants:\n  - roles: [admin]\n    priviledged: true\n", "grants[0].priviledged: unknown key"),
        ("metdata: true\n", "metdata: unknown key"),
        ("grants:\n  - roles: [root]\n", "grants[0].roles[0]"),
        ("grants:\n  - binds: [{path: data}]\n", "must be an absolute path"),
        ("grants:\n  - binds: [{path: /srv, mode: rwx}]\n", "grants[0].binds[0].mode"),
        ("grants:\n  - binds: [{path: /./}]\n", "/ itself cannot be granted"),
        ("grants:\n  - devices: [/etc/shadow]\n", "device paths start with /dev/"),
        ("grants:\n  - security_opt: [apparmor=unconfined]\n", "grants[0].security_opt[0]"),
        ("- a\n- b\n", "must be a YAML mapping"),
        ("grants: [\n", "invalid YAML"),
        ("metadata: !!python/object:os.system x\n", "metadata: input should be a valid boolean (line 1)"),
    ],
)
def test_hostile_and_wrong_policies_name_key_and_line(text: str, fault: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    assert fault in caught.value.lines[0], caught.value.lines
    assert "\n" not in caught.value.lines[0]


def test_unknown_key_names_its_line() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy("grants:\n  - roles: [admin]\n\n    hostbinds: []\n")
    assert caught.value.lines == ["grants[0].hostbinds: unknown key (line 4)"]


def test_a_huge_policy_is_refused() -> None:
    with pytest.raises(PolicyError, match="larger than"):
        parse_policy("metadata: false\n" + "#" * 300_000)


def test_grant_per_role_and_project() -> None:
    doc = parse_policy(SAMPLE)
    operator = grant_for(doc, "operator", "web", FORBIDDEN)
    assert not operator.privileged and operator.binds == () and operator.cap_add == frozenset()
    monitoring = grant_for(doc, "operator", "monitoring", FORBIDDEN)
    assert monitoring.pid_host and monitoring.cap_add == {"CAP_SYS_PTRACE"} and not monitoring.privileged
    assert monitoring.bind_mode("/var/log/syslog") == "ro" and monitoring.bind_mode("/var/lib") is None
    admin = grant_for(doc, "admin", "monitoring", FORBIDDEN)  # both entries, unioned
    assert admin.privileged and admin.pid_host and admin.bind_mode("/srv/data/x") == "rw"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/srv/data/", "/srv/data"),
        ("//var///lib/shoal/", "/var/lib/shoal"),
        ("/srv/data/../../var/lib/shoal", "/var/lib/shoal"),
        ("/srv/./data/.", "/srv/data"),
        ("/../../..", "/"),
        ("/", "/"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_forbidden_covers_parents_and_children_but_not_neighbours() -> None:
    g = Grant(forbidden=FORBIDDEN)
    assert g.forbids("/") == "/"
    assert g.forbids("/var") == "/var/lib/shoal"  # a parent exposes it
    assert g.forbids("/var/lib/shoal/server") == "/var/lib/shoal"
    assert g.forbids("/proc/1/root") == "/proc"
    assert g.forbids("/srv/shoal-data") == "/srv/shoal-data"
    assert g.forbids("/srv/data") is None and g.forbids("/var/lib/shoalx") is None
    assert g.forbids("/devices") is None and covers("/dev", "/dev/fuse")


def deploy(body: str, grant: Grant) -> None:
    text = "services:\n  web:\n    image: app:1\n" + textwrap.indent(textwrap.dedent(body), "    ")
    parse_compose(text, "web", policy=grant)


def refused(body: str, grant: Grant) -> list[str]:
    with pytest.raises(PolicyRefused) as caught:
        deploy(body, grant)
    return caught.value.errors


@pytest.mark.parametrize(
    ("body", "fault"),
    [
        ("privileged: true\n", "services.web.privileged: refused by the node policy (an admin grants it to "
         "role operator or project web with `privileged: true` in a grant) (line 4)"),
        ("cap_add: [NET_ADMIN]\n", "`cap_add: [CAP_NET_ADMIN]`"),
        ("devices: ['/dev/kvm:/dev/kvm']\n", "`devices: [/dev/kvm]`"),
        ("security_opt: [seccomp=unconfined]\n", "`security_opt: [seccomp=unconfined]`"),
        ("security_opt: ['seccomp=/x.json']\n", "`security_opt: [seccomp=custom]`"),
        ("security_opt: ['no-new-privileges:false']\n", "`security_opt: [no-new-privileges:false]`"),
        ("security_opt: ['apparmor=unconfined']\n", "`privileged: true`"),
        ("sysctls: {net.ipv4.ip_forward: '1'}\n", "`sysctls: [net.ipv4.ip_forward]`"),
        ("network_mode: host\n", "`network_mode_host: true`"),
        ("pid: host\n", "`pid_host: true`"),
        ("userns_mode: host\n", "`userns_mode: true`"),
        ("volumes: ['/srv/data:/data']\n", "bind of /srv/data refused by the node policy"),
        ("volumes: ['/:/host']\n", "services.web.volumes[0]: bind of / is never allowed"),
        ("volumes: ['/var/lib/shoal/server:/x']\n", "exposes /var/lib/shoal (no policy can grant it)"),
        ("volumes: ['/srv/data/../../var/lib/shoal/:/x']\n",
         "bind of /srv/data/../../var/lib/shoal/ (that is /var/lib/shoal) is never allowed"),
        ("volumes: ['/var:/x:ro']\n", "exposes /var/lib/shoal"),
        ("volumes: ['//proc//:/x']\n", "exposes /proc"),
    ],
)  # fmt: skip
def test_operator_defaults_refuse_each_key(body: str, fault: str) -> None:
    errors = refused(body, grant_for(parse_policy(""), "operator", "web", FORBIDDEN))
    assert len(errors) == 1 and fault in errors[0], errors


def test_only_restricting_options_need_no_grant() -> None:
    deploy("security_opt: ['no-new-privileges:true']\ncap_drop: [ALL]\n", Grant())


def test_admin_policy_grants_what_it_names_and_no_more() -> None:
    admin = grant_for(parse_policy(SAMPLE), "admin", "web", FORBIDDEN)
    deploy(
        "privileged: true\ndevices: [/dev/fuse]\nuserns_mode: host\n"
        "security_opt: [seccomp=unconfined]\nsysctls: [net.ipv4.ip_forward=1]\n"
        "volumes: ['/srv/data/x:/x', '/srv/data:/y:ro']\n",
        admin,
    )
    deploy("network_mode: host\n", admin)  # apart: a net.* sysctl is refused beside it (Docker's rule)
    assert "/dev/kvm" in refused("devices: [/dev/kvm]\n", admin)[0]
    assert "never allowed" in refused("volumes: ['/srv/shoal-data:/x']\n", admin)[0]


def test_read_only_prefix_refuses_rw() -> None:
    mon = grant_for(parse_policy(SAMPLE), "operator", "monitoring", FORBIDDEN)
    text = "services:\n  web:\n    image: a:1\n    volumes: ['/var/log:/l:ro']\n"
    parse_compose(text, "monitoring", policy=mon)
    with pytest.raises(PolicyRefused, match=r"must be read-only \(add :ro\)"):
        parse_compose(text.replace(":ro", ":rw"), "monitoring", policy=mon)


def test_every_refusal_at_once_after_other_faults() -> None:
    errors = refused("privileged: true\npid: host\n", Grant())
    assert [e.split(":")[0] for e in errors] == ["services.web.privileged", "services.web.pid"]
    with pytest.raises(Exception) as caught:  # a broken file is a 400, not a 403
        deploy("privileged: true\nportz: []\n", Grant())
    assert not isinstance(caught.value, PolicyRefused)


def test_no_policy_given_checks_nothing() -> None:
    """The CLI's local check: it cannot know the server's policy."""
    deploy("privileged: true\nvolumes: ['/:/host']\n", None)  # type: ignore[arg-type]
