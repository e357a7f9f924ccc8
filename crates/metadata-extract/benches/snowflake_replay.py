"""Helpers of benches/snowflake.sh, run with the Python of .tools/fakesnow-venv.

generate URL NAME:DBS:SCHEMAS:TABLES:COLUMNS...
    Makes databases BENCH_<NAME>_1..DBS on fakesnow at URL (the Python connector, plain
    HTTP), each with schemas S01.. of TABLES tables of COLUMNS columns; a database that is
    already complete (on a fakesnow kept running) is left as it is.

replay URL PASSWORD PREFIX
    The baseline: logs in twice (Snowflake's driver protocol, http.client), then sends the
    catalog statements outpost sends for the databases named PREFIX*, SHOWs on one session and
    each database's columns on the other at the same time, reads every answer and result chunk
    and discards them. Only SHOW DATABASES and SHOW SCHEMAS answers are decoded (pyarrow), for
    the names the next statements need.
"""

import base64
import http.client
import json
import sys
import threading
import time
import urllib.parse
import uuid

TYPES = ["NUMBER(38,0)", "VARCHAR(255)", "NUMBER(12,2)", "TIMESTAMP_NTZ"]


def generate(url, specs):
    import snowflake.connector

    parsed = urllib.parse.urlparse(url)
    connection = snowflake.connector.connect(
        user="bench", password="bench", account="bench", host=parsed.hostname,
        port=parsed.port, protocol="http", network_timeout=600,
    )
    cursor = connection.cursor()
    for spec in specs:
        name, dbs, schemas, tables, columns = spec.split(":")
        dbs, schemas, tables, columns = int(dbs), int(schemas), int(tables), int(columns)
        for d in range(1, dbs + 1):
            database = f"BENCH_{name}_{d}"
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
            cursor.execute(
                f"SELECT COUNT(*) FROM {database}.INFORMATION_SCHEMA.TABLES "
                "WHERE TABLE_SCHEMA <> 'INFORMATION_SCHEMA'"
            )
            if cursor.fetchone()[0] == schemas * tables:
                continue
            print(f"building {database}: {schemas} schemas x {tables} tables x {columns} columns",
                  file=sys.stderr, flush=True)
            started = time.time()
            # IF NOT EXISTS: an interrupted build resumes where it stopped.
            body = ", ".join(f"C{c:02d} {TYPES[c % len(TYPES)]}" for c in range(1, columns + 1))
            for s in range(1, schemas + 1):
                cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {database}.S{s:02d}")
                for t in range(1, tables + 1):
                    cursor.execute(f"CREATE TABLE IF NOT EXISTS {database}.S{s:02d}.T{t:04d} ({body})")
            print(f"  {time.time() - started:.0f} s", file=sys.stderr, flush=True)
    connection.close()


class Session:
    def __init__(self, url, password):
        parsed = urllib.parse.urlparse(url)
        self.host, self.port = parsed.hostname, parsed.port
        self.http = http.client.HTTPConnection(self.host, self.port, timeout=600)
        answer = self.post("/session/v1/login-request", {"data": {
            "ACCOUNT_NAME": "BENCH-ACCOUNT", "LOGIN_NAME": "BENCH", "PASSWORD": password,
            "SESSION_PARAMETERS": {}}}, token=None)
        if not answer.get("success"):
            raise SystemExit(f"login refused: {answer}")
        self.token = answer["data"]["token"]

    def post(self, path, body, token):
        query = urllib.parse.urlencode({"requestId": str(uuid.uuid4())})
        headers = {"Content-Type": "application/json", "Accept": "application/snowflake"}
        if token:
            headers["Authorization"] = f'Snowflake Token="{token}"'
        self.http.request("POST", f"{path}?{query}", json.dumps(body), headers)
        return json.loads(self.http.getresponse().read())

    def query(self, sql):
        answer = self.post("/queries/v1/query-request", {"sqlText": sql, "sequenceId": 1}, self.token)
        if not answer.get("success"):
            raise SystemExit(f"{sql}: {answer.get('code')} {answer.get('message')}")
        data = answer["data"]
        headers = data.get("chunkHeaders") or {}
        for chunk in data.get("chunks") or []:
            target = urllib.parse.urlparse(chunk["url"])
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=600)
            connection.request("GET", target.path, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"chunk {chunk['url']}: HTTP {response.status}")
            connection.close()
        return data


def names(data):
    import pyarrow.ipc

    if not data.get("rowsetBase64"):
        return []
    table = pyarrow.ipc.open_stream(base64.b64decode(data["rowsetBase64"])).read_all()
    return [n for n in table.column("name").to_pylist()]


def ident(name):
    return '"' + name.replace('"', '""') + '"'


def replay(url, password, prefix):
    shows, columns = Session(url, password), Session(url, password)
    databases = sorted(n for n in names(shows.query("SHOW DATABASES LIMIT 10000")) if n.startswith(prefix))

    def columns_of_each():
        for database in databases:
            columns.query(
                "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, DATA_TYPE, "
                "CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, IS_NULLABLE, COLUMN_DEFAULT, "
                "IS_IDENTITY, COMMENT "
                f"FROM {ident(database)}.INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA <> 'INFORMATION_SCHEMA' "
                "ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION")

    worker = threading.Thread(target=columns_of_each)
    worker.start()
    for database in databases:
        schemas = names(shows.query(f"SHOW SCHEMAS IN DATABASE {ident(database)} LIMIT 10000"))
        for schema in schemas:
            if schema.upper() == "INFORMATION_SCHEMA":
                continue
            scope = f"{ident(database)}.{ident(schema)}"
            for statement in ("SHOW TABLES", "SHOW VIEWS"):
                shows.query(f"{statement} IN SCHEMA {scope} LIMIT 10000")
            for statement in ("SHOW PRIMARY KEYS", "SHOW UNIQUE KEYS", "SHOW IMPORTED KEYS"):
                shows.query(f"{statement} IN SCHEMA {scope}")
    worker.join()


if __name__ == "__main__":
    command, url, *rest = sys.argv[1:]
    if command == "generate":
        generate(url, rest)
    elif command == "replay":
        replay(url, rest[0], rest[1])
    else:
        raise SystemExit(f"unknown command {command}")
