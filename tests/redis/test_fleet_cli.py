"""`rtsync fleet`: its help, and how it reads the accounts file (hostile input included); no Redis needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rtsync
from rtsync.cli import main
from rtsync.cli.fleet import read_accounts


def test_help_documents_the_accounts_file(capsys: pytest.CaptureFixture) -> None:
    assert main(["fleet", "--help"]) == 0
    text = capsys.readouterr().out
    assert "ID TOKEN CHANNEL [CHANNEL...]" in text and "--capacity" in text and "--resume" in text


def test_accounts_file_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("# id token channels\n\nacme tok-1 ch.1 ch.2\n  globex tok-2 ch.3\n")
    assert read_accounts(str(path)) == {"acme": ("tok-1", ["ch.1", "ch.2"]), "globex": ("tok-2", ["ch.3"])}


def test_bad_accounts_file_exits_4_without_showing_a_token(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "a.txt"
    path.write_text("acme secret-token-1\n")
    assert main(["fleet", "--redis", "redis://127.0.0.1:1/0", "--accounts", str(path)]) == 4
    err = capsys.readouterr().err
    assert "line 1" in err and "secret-token-1" not in err
    path.write_text("acme secret-token-1 ch\nacme secret-token-2 ch\n")
    assert main(["fleet", "--redis", "redis://127.0.0.1:1/0", "--accounts", str(path)]) == 4
    err = capsys.readouterr().err
    assert "twice" in err and "secret-token" not in err
    assert main(["fleet", "--redis", "redis://127.0.0.1:1/0", "--accounts", str(tmp_path / "none")]) == 4


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_any_accounts_text_is_accounts_or_a_configuration_error(tmp_path_factory: pytest.TempPathFactory,
                                                                text: str) -> None:
    path = tmp_path_factory.mktemp("acc") / "a.txt"
    path.write_text(text, encoding="utf-8")
    try:
        accounts = read_accounts(str(path))
    except rtsync.ConfigurationError as exc:
        tokens = [line.split()[1] for line in text.splitlines() if len(line.split()) > 1]
        assert not any(len(t) > 3 and t in str(exc) for t in tokens if t not in str(path))
        return
    for account, (token, channels) in accounts.items():
        assert account and token and channels and not account.startswith("#")
