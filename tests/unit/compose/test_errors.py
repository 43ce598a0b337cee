"""Every refusal is one line naming the key path and its line in the file."""

from __future__ import annotations

import textwrap

import pytest

from shoal.model.compose import ComposeError, parse_compose
from shoal.model.compose_source import Disk, Options, prepare

HEAD = "services:\n  web:\n    image: app:1\n"  # lines 1-3


def error_of(text: str, project: str = "p") -> str:
    with pytest.raises(ComposeError) as caught:
        parse_compose(textwrap.dedent(text), project)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_compose_error_is_a_value_error() -> None:
    assert issubclass(ComposeError, ValueError)


SERVICE_ERRORS = [
    (
        "    deploy:\n      replicass: 2\n",
        "services.web.deploy.replicass: unknown key; did you mean `replicas`? (line 5)",
    ),
    (
        "    ports:\n      - 8080:80\n      - '80:abc'\n",
        'services.web.ports[1]: invalid port "80:abc" (line 6)',
    ),
    (
        "    ports: ['8000-8010:80']\n",
        'services.web.ports[0]: invalid port "8000-8010:80" (ranges are not supported) (line 4)',
    ),
    (
        "    ports: ['80/sctp']\n",
        "services.web.ports[0]: input should be 'tcp' or 'udp' (line 4)",
    ),
    (
        "    ports: [{target: 80, published: 99999}]\n",
        "services.web.ports[0].published: input should be less than or equal to 65535 (line 4)",
    ),
    (
        "    ports:\n      - target: 80\n        nam: web\n",
        "services.web.ports[0].nam: unknown key; did you mean `name`? (line 6)",
    ),
    (
        "    stop_grace_period: 10\n",
        'services.web.stop_grace_period: invalid duration 10 (write it with a unit: "10s") (line 4)',
    ),
    (
        "    healthcheck:\n      test: [CMD, x]\n      interval: soon\n",
        'services.web.healthcheck.interval: invalid duration "soon" (line 6)',
    ),
    (
        "    healthcheck:\n      test: [CURL, x]\n",
        'services.web.healthcheck.test: test must start with "CMD", "CMD-SHELL" or "NONE" and name '
        "a command (line 5)",
    ),
    (
        "    healthcheck:\n      interval: 1s\n      retries: -1\n",
        "services.web.healthcheck.retries: input should be greater than or equal to 0 (line 6)",
    ),
    (
        "    deploy:\n      resources:\n        limits:\n          memory: 12zz\n",
        'services.web.deploy.resources.limits.memory: invalid size "12zz" (line 7)',
    ),
    (
        "    deploy:\n      resources:\n        limits: {cpus: lots}\n",
        'services.web.deploy.resources.limits.cpus: invalid cpus "lots" (a positive number of '
        "cores, e.g. 0.5) (line 6)",
    ),
    (
        "    deploy:\n      resources:\n        reservations:\n          devices: []\n",
        "services.web.deploy.resources.reservations.devices: unknown key (line 7)",
    ),
    (
        "    deploy:\n      replicas: many\n",
        "services.web.deploy.replicas: input should be a valid integer, unable to parse string as "
        "an integer (line 5)",
    ),
    (
        "    deploy:\n      replicas: -1\n",
        "services.web.deploy.replicas: input should be greater than or equal to 0 (line 5)",
    ),
    (
        "    deploy:\n      mode: daemon\n",
        "services.web.deploy.mode: input should be 'replicated' or 'global' (line 5)",
    ),
    (
        "    deploy:\n      mode: global\n      replicas: 2\n",
        "services.web.deploy: replicas cannot be set with mode: global (line 4)",
    ),
    (
        "    deploy:\n      placement:\n        constraints:\n          - node.platform.os==linux\n",
        "services.web.deploy.placement.constraints[0]: unsupported constraint "
        '"node.platform.os==linux" (use node.hostname, node.id, node.role or node.labels.NAME with '
        "== or !=) (line 7)",
    ),
    (
        "    deploy:\n      placement:\n        preferences:\n          - spread: node.hostname\n",
        'services.web.deploy.placement.preferences[0].spread: cannot spread over "node.hostname" '
        "(use node.labels.NAME) (line 7)",
    ),
    (
        "    deploy:\n      update_config:\n        order: random\n",
        "services.web.deploy.update_config.order: input should be 'stop-first' or 'start-first' (line 6)",
    ),
    (
        "    deploy:\n      update_config:\n        failure_action: explode\n",
        "services.web.deploy.update_config.failure_action: input should be 'pause', 'continue' or "
        "'rollback' (line 6)",
    ),
    (
        "    deploy:\n      update_config:\n        max_failure_ratio: 2\n",
        "services.web.deploy.update_config.max_failure_ratio: input should be less than or equal "
        "to 1 (line 6)",
    ),
    (
        "    deploy:\n      rollback_config:\n        parallelism: -2\n",
        "services.web.deploy.rollback_config.parallelism: input should be greater than or equal to "
        "0 (line 6)",
    ),
    (
        "    deploy:\n      restart_policy:\n        condition: always\n",
        "services.web.deploy.restart_policy.condition: input should be 'none', 'on-failure' or "
        "'any' (line 6)",
    ),
    (
        "    environment:\n      - FOO\n",
        'services.web.environment: "FOO" has no value (write FOO=VALUE; variables are not read '
        "from the shell) (line 4)",
    ),
    (
        "    environment:\n      FOO:\n",
        'services.web.environment: "FOO" has no value (variables are not read from the shell) (line 4)',
    ),
    (
        "    command: 'echo \"unterminated'\n",
        "services.web.command: cannot split command: No closing quotation (line 4)",
    ),
    (
        "    volumes: [/data]\n",
        'services.web.volumes[0]: anonymous volume "/data" is not supported (name it: NAME:/data) (line 4)',
    ),
    (
        "    volumes: ['./src:/src']\n",
        'services.web.volumes[0]: "./src" was not sent: only a file can be bound from your machine '
        "(deploy with the shoal CLI; use a named volume for a directory) (line 4)",
    ),
    (
        "    volumes: ['data:/x:rx']\n",
        'services.web.volumes[0]: invalid volume "data:/x:rx" (NAME:/path[:ro] or '
        "/host/path:/path[:ro]) (line 4)",
    ),
    (
        "    volumes: ['data:rel']\n",
        'services.web.volumes[0]: target "rel" must be an absolute path (line 4)',
    ),
    (
        "    volumes:\n      - type: tmpfs\n        source: x\n        target: /t\n",
        "services.web.volumes[0]: a tmpfs mount takes no source (line 5)",
    ),
    (
        "    volumes:\n      - data:/x\n",
        'services.web.volumes[0]: volume "data" is not declared under the top-level volumes: (line 5)',
    ),
    (
        "    secrets: [db]\n",
        'services.web.secrets[0]: secret "db" is not declared under the top-level secrets: (line 4)',
    ),
    (
        "    build: .\n",
        "services.web.build: not supported by shoal: build the image and push it to a registry the nodes "
        "can pull from; set image: (line 4)",
    ),
    (
        "    networks: [front]\n",
        'services.web.networks: network "front" is not declared under the top-level networks: (line 4)',
    ),
    (
        "    pull_policy: sometimes\n",
        "services.web.pull_policy: input should be 'always', 'missing', 'if_not_present' or 'never' (line 4)",
    ),
    (
        "    imagee: x\n",
        "services.web.imagee: unknown key; did you mean `image`? (line 4)",
    ),
    (
        "    x-shoal:\n      ingress: {host: a.example}\n",
        "services.web.x-shoal.ingress.port: required key missing (line 5)",
    ),
    (
        "    x-shoal:\n      ingress: {host: a.example, port: 80, path: api}\n",
        'services.web.x-shoal.ingress: path "api" must start with / (line 5)',
    ),
    (
        "    x-shoal:\n      egress: {}\n",
        "services.web.x-shoal.egress: unknown key; did you mean `ingress`? (line 5)",
    ),
    (
        "    dns: dns.google\n",
        'services.web.dns: invalid DNS server "dns.google" (write an IP address) (line 4)',
    ),
    (
        "    dns: [8.8.8.8, '1.1.1.1; rm -rf /']\n",
        'services.web.dns: invalid DNS server "1.1.1.1; rm -rf /" (write an IP address) (line 4)',
    ),
]


@pytest.mark.parametrize(("body", "expected"), SERVICE_ERRORS)
def test_service_errors(body: str, expected: str) -> None:
    assert error_of(HEAD + body) == expected


def test_missing_image_names_the_service_line() -> None:
    text = "services:\n  db:\n    image: pg\n  web:\n    command: x\n"
    assert error_of(text) == "services.web.image: required key missing (line 4)"


def test_empty_image_is_missing() -> None:
    assert error_of("services:\n  web:\n    image:\n") == "services.web.image: required key missing (line 3)"


def test_service_name_must_be_a_dns_label() -> None:
    text = "services:\n  web:\n    image: a\n  Web_1:\n    image: a\n"
    assert (
        error_of(text)
        == 'services.Web_1: service name "Web_1" must be lowercase letters, digits, "-" and "_" (line 4)'
    )


def test_top_level_errors() -> None:
    assert error_of(HEAD + "include: [a.yaml]\n").startswith("include: not supported by shoal: ")
    assert error_of(HEAD + "servicez: {}\n") == "servicez: unknown key; did you mean `services`? (line 4)"
    assert error_of(HEAD + "volumes:\n  data:\n    driver: nfs\n") == (
        'volumes.data.driver: driver "nfs" is not supported (only local) (line 6)'
    )
    assert error_of(HEAD + "secrets:\n  s:\n    file: ./s.txt\n") == (
        'secrets.s.file: "./s.txt" was not sent (deploy with the shoal CLI) (line 6)'
    )
    assert error_of("services: {}\n") == "services: no services defined (line 1)"
    assert error_of("services:\n  web:\n") == "services.web: must be a mapping (line 2)"
    assert error_of("name: x\n") == "services: required key missing"


def test_invalid_yaml_names_its_line() -> None:
    assert error_of(HEAD + "   bad: [\n").startswith("invalid YAML: ")
    assert error_of(HEAD + "   bad: [\n").endswith("(line 4)")
    assert error_of(HEAD + "    image: b\n") == (
        'invalid YAML: found duplicate key "image" with value "b" (original value: "app:1") (line 4)'
    )
    assert error_of("services: [unclosed\n").startswith("invalid YAML: ")


def test_documents_that_are_not_mappings() -> None:
    assert error_of("") == "the deploy file must be a YAML mapping with a services: key"
    assert error_of("- a\n") == "the deploy file must be a YAML mapping with a services: key"


def test_project_names() -> None:
    assert error_of(HEAD, project="") == "no project name: pass one (--project) or set name: in the file"
    assert (
        error_of(HEAD, project="Bad Name")
        == 'invalid project name "Bad Name" (lowercase letters, digits, "-", "_")'
    )


def test_alias_bomb_is_refused_while_it_is_read() -> None:
    lines = ["x-a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"x-a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    bomb = "\n".join(lines) + "\n"
    too_big = "invalid YAML: with its aliases expanded, this value is larger than 2,000,000 characters"
    for use in ("environment: *a9", "stop_grace_period: *a9"):
        assert error_of(bomb + f"services:\n  web:\n    image: a\n    {use}\n") == f"{too_big} (line 6)"
    # five levels of nine fit the budget: what follows validates it without expanding it wholesale
    small = "\n".join(lines[:5]) + "\nservices:\n  web:\n    image: a\n    environment: *a4\n"
    assert error_of(small) == "services.web.environment: invalid entry (a list) (write KEY=VALUE) (line 9)"


def test_yaml_the_loader_cannot_hold_is_invalid_yaml() -> None:
    assert error_of("services:\n  ? {a: [1]}\n  : x\n").startswith("invalid YAML: ")
    assert error_of("services: " + "[" * 5000 + "]" * 5000 + "\n").startswith("invalid YAML: ")


def test_dns_accepts_one_address_or_a_list_of_v4_and_v6() -> None:
    one = parse_compose(HEAD + "    dns: 192.0.2.53\n", "p")
    many = parse_compose(HEAD + "    dns: [192.0.2.53, '2001:db8::53']\n", "p")
    assert one.services["web"].dns == ["192.0.2.53"]
    assert many.services["web"].dns == ["192.0.2.53", "2001:db8::53"]


SECRETS_TOP = "secrets:\n  tok: {external: true}\n"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("mode: 0o7777", "invalid mode 4095"),
        ("mode: '0999'", 'invalid mode "0999"'),
        ("uid: root", 'invalid id "root" (write a numeric uid or gid)'),
        ("gid: -1", "invalid id -1"),
    ],
)
def test_secret_mode_and_ids_are_refused_when_hostile(entry: str, expected: str) -> None:
    body = f"    secrets:\n      - source: tok\n        {entry}\n{SECRETS_TOP}"
    message = error_of(HEAD + body)
    assert message.startswith("services.web.secrets[0].") and expected in message and "(line 6)" in message


def test_secret_mode_is_octal_as_docker_writes_it_and_reaches_the_container_spec() -> None:
    from shoal.model.specs import to_container_spec

    for written, mode in (("0440", 0o440), ("0o440", 0o440), ("'0440'", 0o440), ("288", 0o440)):
        body = (
            f"    secrets:\n      - source: tok\n        mode: {written}\n        uid: '1000'\n{SECRETS_TOP}"
        )
        spec = to_container_spec(parse_compose(HEAD + body, "p").services["web"], 1, 1)
        (mount,) = [m for m in spec.mounts if m.kind == "secret"]
        assert (mount.mode, mount.uid, mount.gid) == (mode, 1000, None)


def _prepare_errors(text: str, project: str | None = None, shell: dict[str, str] | None = None) -> list[str]:
    """The CLI's own check of a file (compose_source.prepare), as `shoal deploy` runs it."""
    disk = Disk(read=lambda rel: None, is_dir=lambda rel: False)
    with pytest.raises(ComposeError) as refused:
        prepare(text, disk, Options(shell=shell or {}, project=project, dir_name="folder"))
    return refused.value.errors


def test_a_bad_project_name_is_reported_where_it_came_from() -> None:
    fault = 'invalid project name "Bad Name" (lowercase letters, digits, "-", "_")'
    assert _prepare_errors("name: Bad Name\n" + HEAD) == [f"name: {fault} (line 1)"]
    assert _prepare_errors(HEAD, project="Bad Name") == [f"-p/--project: {fault}"]
    env = {"COMPOSE_PROJECT_NAME": "Bad Name"}
    assert _prepare_errors(HEAD, shell=env) == [f"COMPOSE_PROJECT_NAME: {fault}"]
    hostile = 'name: "a\\nb;rm -rf /"\n' + HEAD + '    ports: ["x"]\n'
    lines = _prepare_errors(hostile)
    assert all("\n" not in line for line in lines) and len(lines) == 2
    assert 'name: invalid project name "a\\nb;rm -rf /" (' in " ".join(lines)
