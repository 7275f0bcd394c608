"""A real SMTP server for the mail tests (aiosmtpd, pinned in tests/conformance/requirements.txt).

    smtp_server.py PORT DIR

Listens on 127.0.0.1:PORT and writes every accepted message to DIR/<n>.eml, its envelope
recipients to DIR/<n>.rcpt. A recipient whose local part starts with "reject" is refused with
"550 5.1.1 mailbox unavailable" (a permanent failure). Prints "ready" once listening.
"""

import asyncio
import itertools
import pathlib
import sys

from aiosmtpd.controller import Controller


class Store:
    def __init__(self, directory: pathlib.Path):
        self.directory = directory
        self.counter = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@")[0].startswith("reject"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        (self.directory / f"{n}.eml.tmp").write_bytes(envelope.original_content or envelope.content)
        (self.directory / f"{n}.rcpt").write_text("\n".join(envelope.rcpt_tos))
        # Renamed last, so a reader never sees half a message.
        (self.directory / f"{n}.eml.tmp").rename(self.directory / f"{n}.eml")
        return "250 Message accepted for delivery"


def main():
    port, directory = int(sys.argv[1]), pathlib.Path(sys.argv[2])
    directory.mkdir(parents=True, exist_ok=True)
    controller = Controller(Store(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
