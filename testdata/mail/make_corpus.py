#!/usr/bin/env python3
"""Writes the mail sensor's test corpus (stdlib only, deterministic: run it twice, same bytes).

Each message exercises one kind of real-world mess; the observables expected from each are
written by hand in expected/NAME.json (hashes computed with hashlib, see --hashes).
Run from anywhere: python3 testdata/mail/make_corpus.py
"""
import base64
import codecs
import hashlib
import io
import os
import struct
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
FIXED = (2024, 4, 1, 9, 30, 0)


def write(name, data):
    path = os.path.join(HERE, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if isinstance(data, str):
        data = data.encode("ascii")
    with open(path, "wb") as f:
        f.write(data)


def b64(data, width=76):
    s = base64.b64encode(data).decode("ascii")
    return "\r\n".join(s[i:i + width] for i in range(0, len(s), width)) + "\r\n"


MIME_NAMES = {"utf-8": "UTF-8", "iso2022_jp": "ISO-2022-JP", "shift_jis": "Shift_JIS"}


def enc_word(text, codec):
    """An RFC 2047 B encoded-word; `codec` is Python's codec name."""
    raw = codecs.encode(text, codec)
    return "=?%s?B?%s?=" % (MIME_NAMES[codec], base64.b64encode(raw).decode("ascii"))


def make_zip(members, compress=zipfile.ZIP_DEFLATED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=FIXED)
            info.compress_type = compress
            info.create_system = 0
            info.external_attr = 0
            z.writestr(info, data)
    return buf.getvalue()


def set_encrypted(zdata):
    """Sets the 'encrypted' flag on every member (local and central headers): what a
    password-protected archive looks like to a reader without the password."""
    b = bytearray(zdata)
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = b.find(sig)
        while i >= 0:
            flags = struct.unpack_from("<H", b, i + off)[0] | 1
            struct.pack_into("<H", b, i + off, flags)
            i = b.find(sig, i + 4)
    return bytes(b)


def lie_about_size(zdata, member, size):
    """Rewrites a member's declared uncompressed size (local and central headers)."""
    b = bytearray(zdata)
    name = member.encode()
    for sig, size_off, name_off in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        i = b.find(sig)
        while i >= 0:
            if b[i + name_off:i + name_off + len(name)] == name:
                struct.pack_into("<I", b, i + size_off, size)
            i = b.find(sig, i + 4)
    return bytes(b)


# Attachment payloads (their hashes are in the expected files).
PDF = b"%PDF-1.4\n% Kizuna test invoice\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
EXE = b"MZ" + bytes(range(256)) * 4
README = b"Open payload.exe to see the invoice.\n"
TXT = "請求書の控えです。\n".encode("utf-8")


def plain_utf8():
    subject = enc_word("Re: 会議の議事録", "utf-8")
    name = enc_word("山田 太郎", "utf-8")
    body = (
        "Hello,\r\n\r\nThe minutes are at https://docs.example.org/minutes?id=42&lang=ja.\r\n"
        "Do NOT open hxxp://evil.example/payload or http://evil[.]example/x or\r\n"
        "hxxps[:]//bad.example/y (defanged on purpose).\r\n"
        "Mirror: (http://198.51.100.23:8080/m/index.html)\r\n"
    ).encode("utf-8")
    head = (
        "Received: from mail.example.org (mail.example.org [198.51.100.7])\r\n"
        "\tby mx.example.jp (Postfix) with ESMTPS id 4V1AB2;\r\n"
        "\tMon, 1 Apr 2024 18:30:05 +0900 (JST)\r\n"
        "Received: from [IPv6:2001:db8::25] (unknown [2001:db8::25])\r\n"
        "\tby mail.example.org with ESMTPSA; Mon, 1 Apr 2024 09:30:01 +0000\r\n"
        "From: %s <taro@example.org>\r\n"
        "Sender: relay@example.org\r\n"
        "To: hanako@example.jp, \"Suzuki\" <suzuki@example.jp>\r\n"
        "Cc: team@example.jp\r\n"
        "Reply-To: collect@reply.example.net\r\n"
        "Subject: %s\r\n"
        "Date: Mon, 1 Apr 2024 18:30:00 +0900\r\n"
        "Message-ID: <minutes-42@example.org>\r\n"
        "X-Mailer: Kizuna Test 1.0\r\n"
        "X-Originating-IP: [203.0.113.77]\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    ) % (name, subject)
    write("plain-utf8.eml", head.encode("ascii") + body)


def iso2022jp():
    subject = enc_word("【重要】年金記録の確認について", "iso2022_jp")
    sender = enc_word("年金機構", "iso2022_jp")
    body = codecs.encode("関係者各位\r\n\r\n添付の資料をご確認ください。\r\n", "iso2022_jp")
    fname_2231 = "%E8%AB%8B%E6%B1%82%E6%9B%B8.pdf"  # 請求書.pdf in UTF-8
    fname_2047 = enc_word("確認事項.txt", "iso2022_jp")
    msg = (
        "From: %s <info@nenkin.example.go.jp>\r\n"
        "To: staff@agency.example.go.jp\r\n"
        "Subject: %s\r\n"
        "Date: Tue, 2 Apr 2024 10:00:00 +0900\r\n"
        "Message-ID: <20240402100000.1@nenkin.example.go.jp>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
        "--b1\r\n"
        "Content-Type: text/plain; charset=ISO-2022-JP\r\n"
        "Content-Transfer-Encoding: 7bit\r\n\r\n"
    ) % (sender, subject)
    out = msg.encode("ascii") + body + (
        "\r\n--b1\r\n"
        "Content-Type: application/pdf\r\n"
        "Content-Disposition: attachment; filename*=UTF-8''%s\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n%s"
        "--b1\r\n"
        "Content-Type: text/plain; charset=UTF-8; name=\"%s\"\r\n"
        "Content-Disposition: attachment\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n%s"
        "--b1--\r\n"
    ).encode("ascii") % (fname_2231.encode(), b64(PDF).encode(), fname_2047.encode(), b64(TXT).encode())
    write("iso2022jp.eml", out)


def shift_jis():
    subject = enc_word("お知らせ", "shift_jis")
    text = codecs.encode("詳細は http://portal.example.co.jp/news を参照。\r\n", "shift_jis")
    qp = "".join("=%02X" % c if c > 126 or c == 61 else chr(c) for c in text)
    html = (
        '<html><body><p>\x93\xfa\x96{ <a href="https://portal.example.co.jp/login?u=1&amp;next=%2F">login</a>'
        '<img src="http://cdn.example.net/pixel.gif"></p></body></html>'
    )
    msg = (
        "From: portal@example.co.jp\r\n"
        "To: user@example.jp\r\n"
        "Subject: %s\r\n"
        "Date: Wed, 3 Apr 2024 08:15:00 +0900\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n"
        "--alt\r\n"
        "Content-Type: text/plain; charset=Shift_JIS\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n%s\r\n"
        "--alt\r\n"
        "Content-Type: text/html; charset=Shift_JIS\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    ) % (subject, qp)
    write("shift-jis.eml", msg.encode("ascii") + html.encode("latin-1") + b"\r\n--alt--\r\n")


def raw_8bit_headers():
    subject = codecs.encode("至急：パスワード変更", "shift_jis")
    name = "営業部".encode("utf-8")
    out = (
        b"From: " + name + b" <sales@example.jp>\r\n"
        b"To: all@example.jp\r\n"
        b"Subject: " + subject + b"\r\n"
        b"Date: Thu, 4 Apr 2024 12:00:00 +0900\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=Shift_JIS\r\n\r\n"
        + codecs.encode("変更はこちら: https://reset.example.com/pw\r\n", "shift_jis")
    )
    write("raw-8bit-headers.eml", out)


MEMO = codecs.encode("会議は15時から\r\n", "shift_jis")
CSV = b"name;city\r\nJos\xe9;K\xf6ln\r\n"


def text_attachments():
    """Text attachments sent without base64 (8bit Shift_JIS, quoted-printable Latin-1): their
    hashes must cover the bytes sent. Address headers in raw Shift_JIS and raw ISO-2022-JP."""
    csv_qp = "".join("=%02X" % c if c > 126 or c == 61 else chr(c) for c in CSV)
    out = (
        b"From: " + codecs.encode("総務課", "shift_jis") + b" <soumu@example.go.jp>\r\n"
        b"To: " + codecs.encode("担当者", "iso2022_jp") + b" <tantou@example.go.jp>\r\n"
        b"Subject: memo\r\n"
        b"Date: Fri, 12 Apr 2024 09:00:00 +0900\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=\"t\"\r\n\r\n"
        b"--t\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nTwo files attached.\r\n"
        b"--t\r\nContent-Type: text/plain; charset=Shift_JIS\r\n"
        b"Content-Disposition: attachment; filename=\"memo.txt\"\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + MEMO + b"\r\n"
        b"--t\r\nContent-Type: text/csv; charset=ISO-8859-1\r\n"
        b"Content-Disposition: attachment; filename=\"list.csv\"\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + csv_qp.encode("ascii") + b"\r\n"
        b"--t--\r\n"
    )
    write("text-attachments.eml", out)


def zip_members():
    z = make_zip([("docs/readme.txt", README), ("payload.exe", EXE)])
    write("attachments/invoice.zip", z)
    msg = (
        "From: billing@vendor.example\r\n"
        "To: accounts@example.jp\r\n"
        "Subject: Invoice April\r\n"
        "Date: Fri, 5 Apr 2024 09:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n"
        "--zz\r\nContent-Type: text/plain\r\n\r\nPlease find the invoice attached.\r\n"
        "--zz\r\nContent-Type: application/zip; name=\"invoice.zip\"\r\n"
        "Content-Disposition: attachment; filename=\"invoice.zip\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n%s--zz--\r\n"
    ) % b64(z)
    write("zip-members.eml", msg)


def zip_encrypted():
    z = set_encrypted(make_zip([("secret.docm", b"\x00" * 64 + b"macro")], zipfile.ZIP_STORED))
    write("attachments/secret.zip", z)
    msg = (
        "From: hr@partner.example\r\n"
        "To: staff@example.jp\r\n"
        "Subject: =?UTF-8?Q?=E3=83=91=E3=82=B9=E3=83=AF=E3=83=BC=E3=83=89=E4=BB=98=E3=81=8D?=\r\n"
        "Date: Sat, 6 Apr 2024 09:00:00 +0900\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"e\"\r\n\r\n"
        "--e\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nPassword follows in a separate mail.\r\n"
        "--e\r\nContent-Type: application/x-zip-compressed\r\n"
        "Content-Disposition: attachment; filename=\"secret.zip\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n%s--e--\r\n"
    ) % b64(z)
    write("zip-encrypted.eml", msg)


def zip_bomb():
    big = b"\x00" * (40 << 20)
    z = make_zip([("big.bin", big), ("liar.bin", big), ("ok.txt", b"fine\n")])
    # liar.bin declares 1,000 bytes but expands to 40 MiB: only the inflater's cap stops it.
    z = lie_about_size(z, "liar.bin", 1000)
    msg = (
        "From: bomber@bad.example\r\n"
        "To: victim@example.jp\r\n"
        "Subject: bomb\r\n"
        "Date: Sun, 7 Apr 2024 00:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"q\"\r\n\r\n"
        "--q\r\nContent-Type: application/zip\r\n"
        "Content-Disposition: attachment; filename=\"bomb.zip\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n%s--q--\r\n"
    ) % b64(z)
    write("zip-bomb.eml", msg)


def truncated():
    enc = b64(PDF * 20)
    cut = enc[: len(enc) // 2 + 3]  # mid-line, not a multiple of 4 characters
    msg = (
        "From: scanner@office.example\r\n"
        "To: me@example.jp\r\n"
        "Subject: Scan\r\n"
        "Date: Mon, 8 Apr 2024 07:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"cut\"\r\n\r\n"
        "--cut\r\nContent-Type: text/plain\r\n\r\nScanned document, see http://office.example/scans/1\r\n"
        "--cut\r\nContent-Type: application/pdf\r\n"
        "Content-Disposition: attachment; filename=\"scan.pdf\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n%s"
    ) % cut
    write("truncated.eml", msg)


def inner_message():
    return (
        "From: \"Attacker\" <attacker@phish.example>\r\n"
        "To: victim@example.jp\r\n"
        "Subject: Original lure\r\n"
        "Date: Mon, 1 Apr 2024 00:00:00 +0000\r\n"
        "Message-ID: <lure@phish.example>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"in\"\r\n\r\n"
        "--in\r\nContent-Type: text/plain\r\n\r\nClick https://phish.example/login now\r\n"
        "--in\r\nContent-Type: application/octet-stream\r\n"
        "Content-Disposition: attachment; filename=\"tool.exe\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n%s--in--\r\n"
    ) % b64(EXE)


def forwarded():
    msg = (
        "From: victim@example.jp\r\n"
        "To: soc@example.jp\r\n"
        "Subject: Fwd: Original lure\r\n"
        "Date: Tue, 9 Apr 2024 10:00:00 +0900\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"fw\"\r\n\r\n"
        "--fw\r\nContent-Type: text/plain\r\n\r\nPlease check the attached mail.\r\n"
        "--fw\r\nContent-Type: message/rfc822\r\n"
        "Content-Disposition: attachment; filename=\"lure.eml\"\r\n\r\n%s"
        "--fw--\r\n"
    ) % inner_message()
    write("forwarded.eml", msg)


def deep_nesting():
    msg = "From: level6@deep.example\r\nSubject: level 6\r\nDate: Wed, 10 Apr 2024 00:00:00 +0000\r\n\r\nbottom\r\n"
    for level in range(5, -1, -1):
        msg = (
            "From: level%d@deep.example\r\nSubject: level %d\r\n"
            "Date: Wed, 10 Apr 2024 00:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"L%d\"\r\n\r\n"
            "--L%d\r\nContent-Type: message/rfc822\r\n\r\n%s\r\n--L%d--\r\n"
        ) % (level, level, level, level, msg, level)
    write("deep-nesting.eml", msg)


def qp_html():
    html = (
        '<html><body><p>Your parcel: <a href=3D"http://track.example.com/parcel?id=3D=\r\n'
        '77&amp;c=3D1">track</a></p>\r\n'
        '<p>Report abuse to abuse[at]example.com, never to hxxp://abuse[.]example.com</p>\r\n'
        '<img src=3D"https://img.example.com/logo.png" width=3D"1"></body></html>'
    )
    msg = (
        "From: \"Parcel Service\" <noreply@track.example.com>\r\n"
        "To: customer@example.jp\r\n"
        "Subject: Delivery failed\r\n"
        "Date: Thu, 11 Apr 2024 06:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=us-ascii\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n%s\r\n"
    ) % html
    write("qp-html.eml", msg)


def mbox():
    m1 = (
        "From alice@example.org Mon Apr 15 10:00:00 2024\n"
        "From: alice@example.org\nTo: bob@example.jp\nSubject: first\n"
        "Date: Mon, 15 Apr 2024 10:00:00 +0000\n\n"
        "Hi Bob,\n>From the office: see https://files.example.org/a\n"
        "From here on, an unescaped line (mboxo) that must not start a message.\n\n"
    )
    m2 = (
        "From mallory@bad.example Mon Apr 15 11:00:00 2024\n"
        "From: mallory@bad.example\nTo: bob@example.jp\nSubject: second\n"
        "Date: Mon, 15 Apr 2024 11:00:00 +0000\n"
        "Content-Type: multipart/mixed; boundary=\"x\"\n\n"
        "--x\nContent-Type: text/plain\n\nhttp://bad.example/dl\n"
        "--x\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"a.exe\"\n"
        "Content-Transfer-Encoding: base64\n\n" + b64(EXE).replace("\r\n", "\n")
    )  # no closing boundary, no blank line: the next postmark starts the next message
    m3 = (
        "From carol@example.net Mon Apr 15 12:00:00 2024\n"
        "From: carol@example.net\nSubject: third, no date\n\njust text\n"
    )
    write("mailbox.mbox", m1 + m2 + m3)


def maildir():
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(HERE, "Maildir", sub), exist_ok=True)
    write("Maildir/new/1712700000.M1P1.host", (
        "From: new@example.org\r\nTo: me@example.jp\r\nSubject: new mail\r\n"
        "Date: Wed, 10 Apr 2024 00:00:00 +0000\r\n\r\nhttps://new.example.org/\r\n"))
    write("Maildir/cur/1712600000.M1P1.host:2,S", (
        "From: seen@example.org\r\nTo: me@example.jp\r\nSubject: seen mail\r\n"
        "Date: Tue, 9 Apr 2024 00:00:00 +0000\r\n\r\nhello\r\n"))
    write("Maildir/tmp/1712800000.M1P1.host", (
        "From: partial@example.org\r\nSubject: being delivered\r\n\r\n"))


def hashes():
    for label, data in (("PDF", PDF), ("EXE", EXE), ("README", README), ("TXT", TXT), ("MEMO", MEMO), ("CSV", CSV)):
        print(label, len(data), hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest(),
              hashlib.sha256(data).hexdigest())


if __name__ == "__main__":
    if sys.argv[1:] == ["--hashes"]:
        hashes()
        sys.exit(0)
    for make in (plain_utf8, iso2022jp, shift_jis, raw_8bit_headers, text_attachments,
                 zip_members, zip_encrypted,
                 zip_bomb, truncated, forwarded, deep_nesting, qp_html, mbox, maildir):
        make()
