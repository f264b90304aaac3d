"""psycopg against cxlake's Postgres wire: the extended protocol with bound
parameters (server-side binding), a prepared statement reused, and a wrong
password. Prints one JSON object for tests/e2e/pg.rs to check.

Usage: psycopg_client.py HOST PORT TENANT KEY
"""
import json
import sys

import psycopg

host, port, tenant, key = sys.argv[1:5]
dsn = dict(host=host, port=int(port), user=tenant, password=key, dbname="cxlake", connect_timeout=10)

out = {}
with psycopg.connect(**dsn, autocommit=True) as conn:
    with conn.cursor() as cur:
        cur.execute("SELECT DISTINCT channel FROM conversations ORDER BY channel")
        channels = [r[0] for r in cur.fetchall()]
        by_channel = {}
        for ch in channels:
            # prepare=True: Parse once, then Bind/Execute with the parameter.
            cur.execute("SELECT count(*) FROM conversations WHERE channel = %s", (ch,), prepare=True)
            by_channel[ch] = cur.fetchone()[0]
        out["by_channel"] = by_channel
        cur.execute("SELECT DISTINCT tenant_id FROM events ORDER BY tenant_id")
        out["tenants"] = [r[0] for r in cur.fetchall()]

try:
    psycopg.connect(**{**dsn, "password": "wrong"}).close()
    out["wrong_password_refused"] = False
except psycopg.OperationalError:
    out["wrong_password_refused"] = True

print(json.dumps(out))
