"""CPU time of one API sale in-process: Django's WSGI handler, no HTTP server.

Posts receipts of 3 lines (unique Idempotency-Key each) as the `bench api` till
token, on a database `bench api` seeded, and prints the Python CPU time, the
CPU time of the PostgreSQL backend that served them, and the wall time, per sale.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/loyalist_apibench \\
    REDIS_URL=redis://127.0.0.1:6379/9 DEBUG=False ALLOWED_HOSTS=localhost \\
    LOYALIST_API_THROTTLE_RATE=100000000/min \\
    .venv/bin/python docs/tools/sale_cpu.py 500

CPU times on a shared virtual machine drift by half from one hour to the next;
for a figure that does not, count instructions instead (the sale's share is the
difference of two runs, divided by the 60 extra sales):

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python docs/tools/sale_cpu.py 20   # then with 80
"""

import io
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import connection  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from crm.counters import flag_lower, flag_raise  # noqa: E402
from crm.models import Customer, Product  # noqa: E402
from segments.services.engine import DRAIN_PENDING_KEY  # noqa: E402

WARMUP = 30


def main(count: int) -> None:
    app = get_wsgi_application()
    token = Token.objects.get(user__username="bench-api-till")
    store = token.user.staff_member.store
    customers = list(
        Customer.objects.filter(home_store=store).values_list("pk", flat=True)[:2000]
    )
    skus = list(Product.objects.active().values_list("sku", flat=True))
    rng = random.Random(1)  # noqa: S311 - test data
    status = []

    def post() -> None:
        body = json.dumps(
            {
                "store": store.code,
                "customer": rng.choice(customers),
                "channel": "store",
                "payment_method": "card",
                "lines": [
                    {"sku": sku, "quantity": rng.randint(1, 2)}
                    for sku in rng.sample(skus, 3)
                ],
            }
        ).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/api/v1/receipts/",
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "localhost",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_AUTHORIZATION": f"Token {token.key}",
            "HTTP_IDEMPOTENCY_KEY": uuid.uuid4().hex,
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        response = app(environ, lambda code, _headers, _exc=None: status.append(code))
        answer = b"".join(response)
        response.close()
        if not status.pop().startswith("201"):
            raise SystemExit(f"not recorded: {answer[:300]!r}")

    for _sale in range(WARMUP):
        post()
    # A drain is enqueued when the pending flag has expired (every 10 s): hold it
    # raised, so that how many enqueues fall into a run does not depend on how fast
    # the run goes (under valgrind, about 50 times slower).
    flag_lower(DRAIN_PENDING_KEY)
    flag_raise(DRAIN_PENDING_KEY, timeout=3600)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()

    def backend_cpu() -> float:
        fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    pg, cpu, wall = backend_cpu(), time.process_time(), time.perf_counter()
    for _sale in range(count):
        post()
    flag_lower(DRAIN_PENDING_KEY)
    pg, cpu, wall = (
        backend_cpu() - pg,
        time.process_time() - cpu,
        time.perf_counter() - wall,
    )
    print(
        f"{count} sales: Python {1000 * cpu / count:.2f} ms, PostgreSQL "
        f"{1000 * pg / count:.2f} ms, wall {1000 * wall / count:.2f} ms per sale"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
