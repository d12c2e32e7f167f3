"""Local workbench users: scrypt hashes, roles, the social-care permission, the secret key file."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session


def test_password_hashes_are_salted_and_verified() -> None:
    from joinedup.steward.users import hash_password, verify_password

    one, two = hash_password("a long passphrase"), hash_password("a long passphrase")
    assert one != two and one.startswith("scrypt$") and "passphrase" not in one
    assert verify_password("a long passphrase", one) and not verify_password("a long passphrasE", one)
    assert not verify_password("anything", "md5$abc") and not verify_password("anything", "garbage")


def test_users_roles_and_errors(tmp_path: Path) -> None:
    from joinedup.mci.store import Base
    from joinedup.steward import models  # noqa: F401
    from joinedup.steward.users import UserError, add_user, as_current, authenticate, list_users, set_password

    engine = create_engine(f"sqlite:///{tmp_path / 'u.sqlite'}")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        add_user(session, "vic", "viewer password", "viewer")
        add_user(session, "cara", "steward password", "steward", socialcare=True)
        with pytest.raises(UserError, match="known: viewer, steward, admin"):
            add_user(session, "x", "long enough password", "superuser")
        with pytest.raises(UserError, match="at least 10"):
            add_user(session, "y", "short", "viewer")
        with pytest.raises(UserError, match="exists already"):
            add_user(session, "vic", "viewer password", "viewer")
        assert [u.username for u in list_users(session)] == ["cara", "vic"]
        assert authenticate(session, "vic", "wrong") is None and authenticate(session, "nobody", "x") is None
        vic, cara = as_current(authenticate(session, "vic", "viewer password")), as_current(authenticate(session, "cara", "steward password"))
        assert not vic.can_decide and not vic.socialcare and cara.can_decide and cara.socialcare and not cara.is_admin
        set_password(session, "vic", "a new password")
        assert authenticate(session, "vic", "viewer password") is None
        assert authenticate(session, "vic", "a new password") is not None


def test_generated_secret_key_is_private_and_stable(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from joinedup.steward.web.security import SECRET_FILE, secret_key

    monkeypatch.delenv("JOINEDUP_SECRET_KEY", raising=False)
    first = secret_key()
    path = project / "var" / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(first) >= 40
    assert secret_key() == first
    monkeypatch.setenv("JOINEDUP_SECRET_KEY", "short")
    with pytest.raises(ValueError, match="at least 32"):
        secret_key()
