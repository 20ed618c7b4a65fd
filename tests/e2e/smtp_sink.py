"""A real SMTP server for the e2e mail tests (aiosmtpd), on 127.0.0.1:PORT.

Prints one JSON line when it listens ({"ready": port}) and one per message it accepts, with the
envelope and the decoded parts; runs until its standard input closes.
"""

import email
import email.policy
import json
import sys

from aiosmtpd.controller import Controller


class Sink:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        plain = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        print(
            json.dumps(
                {
                    "mailFrom": envelope.mail_from,
                    "rcptTo": envelope.rcpt_tos,
                    "from": str(msg["From"]),
                    "to": str(msg["To"]),
                    "subject": str(msg["Subject"]),
                    "text": plain.get_content() if plain else None,
                    "html": html.get_content() if html else None,
                }
            ),
            flush=True,
        )
        return "250 OK"


def main():
    port = int(sys.argv[1])
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    print(json.dumps({"ready": port}), flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
