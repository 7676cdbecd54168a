"""The least any Python tool must do to look at mail: parse every message of an mbox with the
standard library's `email` package (policy.default: RFC 2047 headers decoded, MIME walked) and
hash every attachment with hashlib (SHA-256 and MD5), one process, as the comparison for
`kizuna scan mail` (there is no STIX evaluator over mail to compare with). Usage:

    python mail_python.py FILE.mbox [MESSAGES]

(the first MESSAGES messages only, when given). Prints messages, attachments, seconds and
messages/s (wall and per CPU second), and MAIL_PYTHON_RATE=... (messages per wall second).
"""

import email
import email.policy
import hashlib
import re
import sys
import time

URL = re.compile(rb"https?://[^\s\"<>]+")


def messages(path):
    """Split on mbox `From ` lines that follow a blank line (the generator's mboxrd form)."""
    with open(path, "rb") as f:
        data = f.read()
    starts = [0] + [m.start() + 2 for m in re.finditer(rb"\n\nFrom ", data)]
    for a, b in zip(starts, starts[1:] + [len(data)]):
        chunk = data[a:b]
        nl = chunk.find(b"\n")
        yield chunk[nl + 1:]


def main():
    path = sys.argv[1]
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else None
    t0, c0 = time.perf_counter(), time.process_time()
    n = attachments = urls = 0
    for raw in messages(path):
        if n == limit:
            break
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        n += 1
        _ = (msg["from"], msg["to"], msg["subject"], msg.get_all("received"))
        for part in msg.walk():
            if part.is_multipart():
                continue
            payload = part.get_payload(decode=True) or b""
            if part.get_content_disposition() == "attachment":
                attachments += 1
                hashlib.sha256(payload).hexdigest()
                hashlib.md5(payload).hexdigest()
            elif part.get_content_maintype() == "text":
                urls += len(URL.findall(payload))
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"python email + hashlib: {n} messages, {attachments} attachments, {urls} URLs "
          f"in {secs:.2f} s = {n / secs:,.0f} messages/s (one process; "
          f"{cpu:.2f} CPU s = {n / cpu:,.0f} messages per CPU second)")
    print(f"MAIL_PYTHON_RATE={n / secs:.1f}")
    print(f"MAIL_PYTHON_CPU_RATE={n / cpu:.1f}")


if __name__ == "__main__":
    main()
