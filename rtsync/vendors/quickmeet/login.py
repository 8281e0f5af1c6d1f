"""QuickMeet's login, sans-I/O: resume token first, the password digest as the fallback, renewal before the token lapses.

A mixin of `QuickMeetProtocol` (it shares the protocol's state). The login's
result is the only acknowledgement (reference section 9.2); credential failures
are the number 403 and final, `totp-required` says what to use instead, a rate
limit waits. With a password, the login is repeated on the live link
`refresh_before` s ahead of `tokenExpires` (read with the injected wall clock);
without one, an `rtsync.error` says once that the token cannot be renewed.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from ...errors import AuthenticationError, CallError, ProtocolError, RateLimited
from ...sansio import Fail, Output, Report, Send
from .ejson import decode_ejson
from .failures import call_error, code_of
from .streams import StreamSub, dumps
from .sync import ChangeLog

__all__ = ["Login"]


class Login:
    """The login half of `QuickMeetProtocol`."""

    state: str
    resume_token: Optional[str]
    user_id: Optional[str]
    username: Optional[str]
    token_expires: Optional[datetime]
    wall_clock: Optional[Callable[[], float]]
    refresh_before: float
    refresh_floor: float
    subs: Dict[str, StreamSub]
    _password_login: Dict[str, Any]
    _tried_password: bool
    _added_users: Dict[str, str]
    _internal: Dict[str, Any]
    _queue: List[str]
    _relinked: bool
    _changes: Dict[str, ChangeLog]
    _refresh_due: Optional[float]
    _warned_expiry: bool

    if TYPE_CHECKING:  # provided by the class this is mixed into
        def _new_id(self, prefix: str) -> str:
            raise NotImplementedError  # QuickMeetProtocol's

        def _announce(self) -> List[Output]:
            raise NotImplementedError  # QuickMeetProtocol's

        def _sync_call(self, kind: str) -> Send:
            raise NotImplementedError  # Streams'

    def _login(self, with_token: bool, purpose: str = "login") -> List[Output]:
        if with_token:
            params: Dict[str, Any] = {"resume": self.resume_token}
        elif self._password_login:
            self._tried_password = True
            params = self._password_login
        else:
            return [Fail(AuthenticationError("no credentials: give username and password, or resume_token"))]
        if purpose == "login":
            self.state = "logging-in"
        login_id = self._new_id("login")
        self._internal[login_id] = (purpose, with_token)
        return [Send(dumps({"msg": "method", "id": login_id, "method": "login", "params": [params]}))]

    def _logged_in(self, result: Any, now: float, refresh: bool = False) -> List[Output]:
        # The login worked (no error): ill-typed details of the answer are reported and ignored.
        out: List[Output] = []
        wrong: List[str] = []
        if result is None:
            result = {}
        elif not isinstance(result, dict):
            wrong.append(f"the result is a {type(result).__name__}")
            result = {}
        token, user_id, expires = result.get("token"), result.get("id"), result.get("tokenExpires")
        if token is not None and not isinstance(token, str):
            wrong.append(f"token is a {type(token).__name__}")
        if user_id is not None and not isinstance(user_id, str):
            wrong.append(f"id is a {type(user_id).__name__}")
        try:
            expires = decode_ejson(expires)
        except ProtocolError:
            wrong.append("tokenExpires is not a date")
            expires = None
        if wrong:
            out.append(Report(ProtocolError(
                f"the login answer is ill-typed ({', '.join(wrong)}); those parts were ignored")))
        self.resume_token = (token if isinstance(token, str) else None) or self.resume_token
        self.user_id = (user_id if isinstance(user_id, str) else None) or self.user_id
        self.username = self._added_users.get(self.user_id or "", self.username)
        self.token_expires = expires if isinstance(expires, datetime) else None
        self._plan_refresh(now)
        if refresh:
            return out
        self.state = "ready"
        out += [Send(sub.frame()) for sub in self.subs.values()]
        for sub in self.subs.values():
            sub.ready, sub.retry_at = False, None
        out += [Send(frame) for frame in self._queue]
        self._queue = []
        if self._relinked:
            for kind, log in self._changes.items():
                log.pending = False  # whatever was out went down with the old link
                if log.baselined:
                    out.append(self._sync_call(kind))
        if not self.subs:
            out += self._announce()
        return out

    def _plan_refresh(self, now: float) -> None:
        """When to log in again so the token never lapses: `refresh_before` s ahead of its expiry."""
        self._refresh_due = None
        if self.token_expires is None or self.wall_clock is None:
            return
        left = self.token_expires.timestamp() - self.wall_clock()
        # Never sooner than a minute after a login: a server that keeps answering with a token
        # about to lapse must not get a login storm.
        self._refresh_due = now + max(left - self.refresh_before, self.refresh_floor)

    def _refresh(self, now: float) -> List[Output]:
        self._refresh_due = None
        if self._password_login:
            return self._login(False, purpose="refresh")
        if self._warned_expiry:
            return []
        self._warned_expiry = True
        return [Report(AuthenticationError(
            f"the resume token expires at {self.token_expires:%Y-%m-%d %H:%M} UTC and rtsync cannot renew it "
            "without the password: give the password too, or a resume_token callable that returns a fresh "
            "token (it is called before each connection)"))]

    def _login_failed(self, error: Any, with_token: bool) -> List[Output]:
        failure = call_error("login", error)
        if isinstance(failure, RateLimited):
            return [Fail(failure)]
        if with_token and self._password_login and not self._tried_password and code_of(error) == 403:
            return self._login(False)  # the resume token was refused: the password still works
        if code_of(error) == "totp-required":
            return [Fail(AuthenticationError(
                "QuickMeet wants a second factor (TOTP) for this account, which an unattended client "
                "cannot give: log in with a personal access token (resume_token=...) instead. "
                "rtsync will not retry."))]
        return [Fail(AuthenticationError(
            f"QuickMeet refused the login: {failure.reason if isinstance(failure, CallError) else failure} "
            f"[{code_of(error)}]. Check the credentials; rtsync will not retry."))]

