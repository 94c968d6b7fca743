"""Sending mail through the SMTP server of ``CRM_SMTP_URL`` with ``smtplib``.

:meth:`Mailer.deliver` speaks the SMTP transaction step by step (MAIL, RCPT, DATA) rather than
through ``send_message``, so that it knows at every failure whether the server can possibly
have accepted the message, and so that the caller can record the hand-over to the server in
its own transaction just before DATA (:mod:`plugins.operational.mailings` does). Failures are
``DeliveryError`` with a ``kind``:

- ``unreachable``: no connection, TLS or login failed; nothing was sent, retry later;
- ``retry``: the server refused with a 4xx reply (or dropped us before DATA); nothing was sent;
- ``rejected``: the server refused with a 5xx reply; nothing was sent, retrying will not help;
- ``unknown``: the connection broke during DATA; the server may have accepted the message.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from types import TracebackType
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
TIMEOUT_SECONDS = 30.0
KINDS = ("unreachable", "retry", "rejected", "unknown")


class DeliveryError(Exception):
    """A message was not (or not surely) delivered; ``kind`` is one of ``KINDS``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to connect: ``mode`` is ``plain``, ``starttls`` or ``ssl``."""

    host: str
    port: int
    mode: str
    username: str | None = None
    password: str | None = None


def parse_smtp_url(url: str) -> SmtpConfig:
    """``smtp://host:25``, ``smtp+starttls://user:pass@host:587`` or ``smtps://...`` as a config.

    User name and password may be percent-encoded (``%40`` for ``@``).
    """
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{url!r} is not an SMTP URL such as smtp+starttls://user:pass@host:587")
    mode = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "ssl"}[parts.scheme]
    return SmtpConfig(
        host=parts.hostname,
        port=parts.port or DEFAULT_PORTS[parts.scheme],
        mode=mode,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def recipient(display_name: str, email: str) -> Address:
    """The ``To`` header for ``email`` (an address the product accepted) shown as
    ``display_name``.

    Built from its parts rather than parsed: Python's header parser refuses a non-ASCII local
    part (``đức@example.com``) that the product stores and SMTPUTF8 servers accept.
    """
    username, _, domain = email.rpartition("@")
    return Address(display_name=display_name, username=username, domain=domain)


def _kind_of_reply(code: int) -> str:
    return "retry" if 400 <= code < 500 else "rejected"


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


class Mailer:
    """One SMTP connection, opened on first use and reused; use it as a context manager."""

    def __init__(self, url: str, timeout: float = TIMEOUT_SECONDS) -> None:
        self.config = parse_smtp_url(url)
        self.timeout = timeout
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> Mailer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Say QUIT (or just drop the connection if the server is gone)."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def _drop(self) -> None:
        """Forget a connection that is broken, closing its socket."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def _open(self) -> smtplib.SMTP:
        config = self.config
        if config.mode == "ssl":
            return smtplib.SMTP_SSL(
                config.host, config.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        return smtplib.SMTP(config.host, config.port, timeout=self.timeout)

    def _connect(self) -> smtplib.SMTP:
        """A connection greeted, secured and logged in as the URL says."""
        config = self.config
        where = f"{config.host}:{config.port}"
        smtp = None
        try:
            smtp = self._open()
            smtp.ehlo()
            if config.mode == "starttls":
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if config.username:
                smtp.login(config.username, config.password or "")
        except (smtplib.SMTPException, OSError) as exc:
            if smtp is not None:
                smtp.close()
            what = "login refused" if isinstance(exc, smtplib.SMTPAuthenticationError) else "failed"
            raise DeliveryError("unreachable", f"SMTP server {where}: {what}: {exc}") from None
        return smtp

    def _envelope(self, smtp: smtplib.SMTP, sender: str, recipient: str, utf8: bool) -> None:
        """MAIL FROM and RCPT TO; refusals raise ``DeliveryError`` (nothing was sent)."""
        options = ["SMTPUTF8", "BODY=8BITMIME"] if utf8 else []
        if utf8 and not smtp.has_extn("smtputf8"):
            raise DeliveryError("rejected", "the SMTP server does not accept non-ASCII addresses")
        code, reply = smtp.mail(sender, options)
        if code != 250:
            smtp.rset()
            raise DeliveryError(_kind_of_reply(code), f"MAIL FROM refused: {code} {_text(reply)}")
        code, reply = smtp.rcpt(recipient)
        if code not in (250, 251):
            smtp.rset()
            raise DeliveryError(_kind_of_reply(code), f"RCPT TO refused: {code} {_text(reply)}")

    def _start(self, sender: str, recipient: str, utf8: bool) -> smtplib.SMTP:
        """An open connection with the envelope given, reconnecting once if the old one died."""
        reused = self._smtp is not None
        if self._smtp is None:
            self._smtp = self._connect()
        try:
            self._envelope(self._smtp, sender, recipient, utf8)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            if not reused:
                raise DeliveryError("retry", f"the SMTP server hung up: {exc}") from None
            self._smtp = self._connect()  # an idle connection the server closed: once more
            try:
                self._envelope(self._smtp, sender, recipient, utf8)
            except (smtplib.SMTPServerDisconnected, OSError) as again:
                self._drop()
                raise DeliveryError("retry", f"the SMTP server hung up: {again}") from None
        return self._smtp

    def deliver(
        self, message: EmailMessage, sender: str, recipient: str, handover: Callable[[], bool]
    ) -> bool:
        """Send ``message`` to ``recipient``; ``True`` once the server accepted it.

        ``handover()`` runs after the envelope was accepted and right before DATA: when it
        returns ``False`` (the caller no longer owns the message) the transaction is reset and
        nothing is sent (``False`` is returned). Raises ``DeliveryError`` otherwise.
        """
        utf8 = not (sender.isascii() and recipient.isascii())
        data = message.as_bytes(policy=policy.SMTPUTF8 if utf8 else policy.SMTP)
        smtp = self._start(sender, recipient, utf8)
        if not handover():
            try:
                smtp.rset()
            except (smtplib.SMTPException, OSError):
                self._drop()
            return False
        try:
            code, reply = smtp.data(data)
        except smtplib.SMTPDataError as exc:  # DATA itself refused: the message never went
            raise DeliveryError(
                _kind_of_reply(exc.smtp_code),
                f"DATA refused: {exc.smtp_code} {_text(exc.smtp_error)}",
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise DeliveryError(
                "unknown", f"the connection broke while the server received the message: {exc}"
            ) from None
        if code != 250:
            raise DeliveryError(_kind_of_reply(code), f"message refused: {code} {_text(reply)}")
        return True
