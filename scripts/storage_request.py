#!/usr/bin/env python3
"""Signed requests to the storage emulators that scripts/services.sh starts (stdlib only).

  storage_request.py s3 METHOD URL --access-key K --secret-key S [--region R] [--ok 200,409]
  storage_request.py azure METHOD URL --account A --key BASE64KEY [--ok 201,409]

s3 signs with AWS Signature Version 4 (path-style URL, empty body); azure signs with the
Storage SharedKey scheme (path-style emulator URL http://host:port/ACCOUNT/...).
Exits 0 when the HTTP status is in --ok (default: any 2xx) and prints the status on stdout,
else prints the status and body on stderr and exits 1. --body prints the response body too.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import sys
import urllib.error
import urllib.parse
import urllib.request

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _quote(s, safe="-_.~"):
    return urllib.parse.quote(s, safe=safe)


def s3_headers(method, url, access_key, secret_key, region):
    parts = urllib.parse.urlsplit(url)
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = now.strftime("%Y%m%d")
    headers = {
        "host": parts.netloc,
        "x-amz-content-sha256": EMPTY_SHA256,
        "x-amz-date": amz_date,
    }
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    canonical_query = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(query))
    signed = ";".join(sorted(headers))
    canonical_headers = "".join(f"{k}:{headers[k].strip()}\n" for k in sorted(headers))
    canonical_request = "\n".join([
        method,
        _quote(urllib.parse.unquote(parts.path or "/"), safe="/-_.~"),
        canonical_query,
        canonical_headers,
        signed,
        EMPTY_SHA256,
    ])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join([
        "AWS4-HMAC-SHA256",
        amz_date,
        scope,
        hashlib.sha256(canonical_request.encode()).hexdigest(),
    ])
    key = ("AWS4" + secret_key).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    del headers["host"]  # urllib sets it
    return headers


def azure_headers(method, url, account, key, content_type=""):
    parts = urllib.parse.urlsplit(url)
    headers = {
        "x-ms-date": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%a, %d %b %Y %H:%M:%S GMT"
        ),
        "x-ms-version": "2021-08-06",
    }
    canonical_headers = "".join(f"{k}:{headers[k]}\n" for k in sorted(headers))
    # Path-style emulator URLs carry the account in the path, and the canonicalized resource
    # prefixes it once more (as the Azure SDKs do).
    resource = f"/{account}{parts.path or '/'}"
    params = {}
    for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        params.setdefault(k.lower(), []).append(v)
    for k in sorted(params):
        resource += f"\n{k}:{','.join(sorted(params[k]))}"
    # VERB, Content-Encoding, -Language, -Length (empty when 0), -MD5, -Type, Date,
    # If-Modified-Since, If-Match, If-None-Match, If-Unmodified-Since, Range.
    to_sign = method + "\n" * 5 + content_type + "\n" * 7 + canonical_headers + resource
    signature = base64.b64encode(
        hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()
    ).decode()
    headers["Authorization"] = f"SharedKey {account}:{signature}"
    if content_type:
        headers["Content-Type"] = content_type
    return headers


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="kind", required=True)
    for kind in ("s3", "azure"):
        s = sub.add_parser(kind)
        s.add_argument("method")
        s.add_argument("url")
        s.add_argument("--ok", help="comma-separated acceptable statuses (default: any 2xx)")
        s.add_argument("--body", action="store_true", help="print the response body")
        s.add_argument("--timeout", type=float, default=10)
        if kind == "s3":
            s.add_argument("--access-key", required=True)
            s.add_argument("--secret-key", required=True)
            s.add_argument("--region", default="us-east-1")
        else:
            s.add_argument("--account", required=True)
            s.add_argument("--key", required=True)
    a = p.parse_args()
    method = a.method.upper()
    # An empty body with PUT and POST, so urllib sends Content-Length: 0; it would add a
    # form Content-Type by itself, so it is set (and signed, for azure) here.
    data = b"" if method in ("PUT", "POST") else None
    content_type = "application/octet-stream" if data is not None else ""
    if a.kind == "s3":
        headers = s3_headers(method, a.url, a.access_key, a.secret_key, a.region)
        if content_type:
            headers["content-type"] = content_type
    else:
        headers = azure_headers(method, a.url, a.account, a.key, content_type)
    req = urllib.request.Request(a.url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=a.timeout) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    except OSError as e:
        print(f"{method} {a.url}: {e}", file=sys.stderr)
        return 1
    ok = {int(x) for x in a.ok.split(",")} if a.ok else None
    if (status in ok) if ok else (200 <= status < 300):
        print(status)
        if a.body:
            sys.stdout.write(body.decode(errors="replace"))
        return 0
    print(f"{method} {a.url}: HTTP {status}\n{body.decode(errors='replace')}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
