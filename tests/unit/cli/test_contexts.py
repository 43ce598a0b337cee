"""Contexts in ~/.config/shoal and their resolution with SHOAL_* overrides (temp HOME)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from shoal.client.contexts import (
    ConfigDoc,
    ContextEntry,
    ContextStore,
    config_dir,
    context_name,
    parse_config,
    resolve,
)
from shoal.errors import ConfigError


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return tmp_path


def test_config_dir_follows_home_and_xdg(home: Path) -> None:
    assert config_dir() == home / ".config" / "shoal"
    assert config_dir({"XDG_CONFIG_HOME": "/x"}) == Path("/x/shoal")


def test_put_writes_private_files_and_makes_current(home: Path) -> None:
    store = ContextStore()
    ca = store.put("prod", "https://a.example:7443/", "tok1", b"PEM")
    doc = store.load()
    assert doc.current == "prod"
    assert doc.contexts["prod"] == ContextEntry(server="https://a.example:7443", token="tok1", ca=str(ca))
    assert ca is not None and ca.read_bytes() == b"PEM"
    for path in (store.path, ca):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700


def test_use_and_remove(home: Path) -> None:
    store = ContextStore()
    store.put("one", "https://one:1", "t1", None)
    store.put("two", "https://two:2", "t2", b"x")
    assert store.load().current == "two"
    store.use("one")
    assert store.load().current == "one"
    with pytest.raises(ConfigError, match="no context named 'three'"):
        store.use("three")
    store.remove("two")
    assert set(store.load().contexts) == {"one"}
    assert not (store.directory / "ca" / "two.pem").exists()


def test_bad_context_name_and_corrupt_file(home: Path) -> None:
    store = ContextStore()
    with pytest.raises(ConfigError, match="context name"):
        store.put("bad name", "https://x", "t", None)
    store.directory.mkdir(parents=True)
    store.path.write_text('{"contexts": 5}')
    with pytest.raises(ConfigError, match="not a shoal config file"):
        store.load()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[]", "not a JSON object"),
        ('{"contexts": {"a": 1}}', "contexts.a: must be an object"),
        ('{"contexts": {"a": {"token": "t"}}}', "contexts.a.server: must be a string"),
        ('{"contexts": {"a": {"server": "s", "ca": 7}}}', "contexts.a.ca: must be a string"),
        ('{"current": 1}', "current: must be a string"),
        ("{not json", "Expecting property name"),
        (b'{"current": "\x80"}', "can't decode"),
    ],
)
def test_a_bad_config_file_is_named_with_the_first_thing_wrong(
    home: Path, text: str | bytes, reason: str
) -> None:
    store = ContextStore()
    store.directory.mkdir(parents=True)
    store.path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError, match="not a shoal config file") as caught:
        store.load()
    assert reason in str(caught.value) and str(store.path) in str(caught.value)


def test_unknown_keys_are_ignored_and_a_saved_file_reads_back(home: Path) -> None:
    doc = parse_config({"current": "a", "x": 1, "contexts": {"a": {"server": "https://a:1", "new": True}}})
    assert doc == ConfigDoc(current="a", contexts={"a": ContextEntry(server="https://a:1")})
    store = ContextStore()
    store.save(_doc())
    assert store.load() == _doc()


def _doc() -> ConfigDoc:
    return ConfigDoc(
        current="a",
        contexts={
            "a": ContextEntry(server="https://a:1", token="ta", ca="/ca/a.pem"),
            "b": ContextEntry(server="https://b:2", token="tb", ca=None),
        },
    )


def test_resolve_uses_current_context() -> None:
    got = resolve(_doc(), {})
    assert (got.server, got.token, got.ca, got.context) == ("https://a:1", "ta", Path("/ca/a.pem"), "a")


def test_environment_overrides_each_field() -> None:
    env = {"SHOAL_SERVER": "https://env:9/api/v1", "SHOAL_TOKEN": "te", "SHOAL_CACERT": "/env.pem"}
    got = resolve(_doc(), env)
    assert (got.server, got.token, got.ca) == ("https://env:9", "te", Path("/env.pem"))
    only_token = resolve(_doc(), {"SHOAL_TOKEN": "te"})
    assert (only_token.server, only_token.token, only_token.ca) == ("https://a:1", "te", Path("/ca/a.pem"))


def test_shoal_context_picks_another_context() -> None:
    got = resolve(_doc(), {"SHOAL_CONTEXT": "b"})
    assert (got.server, got.token, got.ca) == ("https://b:2", "tb", None)
    with pytest.raises(ConfigError, match="SHOAL_CONTEXT=c"):
        resolve(_doc(), {"SHOAL_CONTEXT": "c"})


def test_env_alone_works_without_any_context() -> None:
    got = resolve(ConfigDoc(), {"SHOAL_SERVER": "127.0.0.1:7443", "SHOAL_TOKEN": "t"})
    assert (got.server, got.token, got.ca, got.context) == ("https://127.0.0.1:7443", "t", None, None)


def test_no_server_is_a_one_line_hint() -> None:
    with pytest.raises(ConfigError, match="shoal login URL --token TOKEN"):
        resolve(ConfigDoc(), {"SHOAL_TOKEN": "t"})


def test_context_name_from_url() -> None:
    assert context_name("https://api.example.com") == "api.example.com"
    assert context_name("https://127.0.0.1:7443/api/v1") == "127.0.0.1-7443"
