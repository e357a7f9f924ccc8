#!/usr/bin/env python3
"""The Tableau benchmark's baseline: a minimal client that signs in with the Personal Access
Token, sends the Metadata API requests outpost sent (recorded by the fake, `--record`), one
after another on one kept-alive connection as outpost does, reads every answer whole, and
throws it away. Its time is the fake's own time to answer the same pages: the floor.

Usage: tableau_replay.py URL SITE TOKEN_NAME TOKEN_SECRET RECORDED_BODIES
"""
import http.client
import re
import sys
import urllib.parse
from xml.sax.saxutils import quoteattr


def main():
    url, site, name, secret, recorded = sys.argv[1:6]
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port)
    body = (
        "<tsRequest><credentials personalAccessTokenName=%s personalAccessTokenSecret=%s>"
        "<site contentUrl=%s/></credentials></tsRequest>"
        % (quoteattr(name), quoteattr(secret), quoteattr(site))
    )
    conn.request("POST", "/api/3.23/auth/signin", body.encode(), {"Content-Type": "application/xml"})
    answer = conn.getresponse().read().decode()
    token = re.search(r'credentials[^>]*\btoken="([^"]+)"', answer)
    if not token:
        sys.exit("sign-in failed: " + answer[:300])
    headers = {"Content-Type": "application/json", "X-Tableau-Auth": token.group(1)}
    pages = 0
    with open(recorded, "rb") as lines:
        for line in lines:
            conn.request("POST", "/api/metadata/graphql", line.rstrip(b"\n"), headers)
            response = conn.getresponse()
            data = response.read()
            if response.status != 200 or b'"data":null' in data:
                sys.exit("page %d failed: %s" % (pages, data[:300]))
            pages += 1
    conn.request("POST", "/api/3.23/auth/signout", b"", {"X-Tableau-Auth": token.group(1)})
    conn.getresponse().read()
    print(pages)


if __name__ == "__main__":
    main()
