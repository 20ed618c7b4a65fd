"""A real SMTP server for the e2e mail tests (aiosmtpd), on 127.0.0.1:PORT.

Prints one JSON line when it listens ({"ready": port}) and one per message it accepts, with the
envelope and the decoded parts (also appended to LOG_FILE when given, for the browser tests);
runs until its standard input closes.

Usage: smtp_sink.py PORT [LOG_FILE]
"""

import email
import email.policy
import json
import sys

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, log_file=None):
        self.log_file = log_file

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        plain = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        line = json.dumps(
                {
                    "mailFrom": envelope.mail_from,
                    "rcptTo": envelope.rcpt_tos,
                    "from": str(msg["From"]),
                    "to": str(msg["To"]),
                    "subject": str(msg["Subject"]),
                    "text": plain.get_content() if plain else None,
                    "html": html.get_content() if html else None,
                }
            )
        if self.log_file:
            with open(self.log_file, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        print(line, flush=True)
        return "250 OK"


def main():
    port = int(sys.argv[1])
    log_file = sys.argv[2] if len(sys.argv) > 2 else None
    controller = Controller(Sink(log_file), hostname="127.0.0.1", port=port)
    controller.start()
    print(json.dumps({"ready": port}), flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
