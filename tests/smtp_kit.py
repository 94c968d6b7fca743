"""A real SMTP server for tests: aiosmtpd on loopback, keeping what it accepted."""

from __future__ import annotations

import email
import socket
import threading
from email import policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller


class Collector:
    """An aiosmtpd handler keeping what it accepted; ``reply`` makes it refuse (or ``drop``)."""

    def __init__(self) -> None:
        self.envelopes: list = []
        self.reply: str | None = None
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        if self.reply == "drop":  # hang up before answering: the client cannot know
            server.transport.close()
            return "250 OK"
        if self.reply:
            return self.reply
        with self.lock:
            self.envelopes.append(envelope)
        return "250 OK"

    @property
    def messages(self) -> list[EmailMessage]:
        """The accepted messages, parsed."""
        return [email.message_from_bytes(e.content, policy=policy.default) for e in self.envelopes]

    def recipients(self) -> list[str]:
        """Every envelope recipient, in order (repeated if a mail came twice)."""
        return [r for e in self.envelopes for r in e.rcpt_tos]


class SmtpServer:
    """aiosmtpd on 127.0.0.1 and a free port; can be stopped and started again."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.handler = Collector()
        self.controller: Controller | None = None
        self.url = f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen (again)."""
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        """Stop listening: connections are refused."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
