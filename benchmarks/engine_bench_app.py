"""The benchmark's SDK app: the official ``inngest`` SDK under uvicorn, one 10-step function.

Run by engine_bench.py as a subprocess:
``python benchmarks/engine_bench_app.py PORT ENGINE_URL MODE NOTIFY_PORT``.
Each ``step.run`` returns ~100 bytes. When a run's body finishes, the app
sends its run id in a UDP datagram to NOTIFY_PORT so the benchmark can keep
exactly N runs in flight without polling the engine.
"""

from __future__ import annotations

import logging
import sys
import warnings

from _common import w10_function  # the script's folder is on sys.path

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import fastapi
    import inngest
    import inngest.fast_api
    import uvicorn

SIGNING_KEY = "signkey-prod-36a1f3b2dec415623923fcb56949e180259e4cfc2b583737062f1506a3ad3652"
EVENT_KEY = "f409725ceb54cf9c9f10e5a2b42c8feb9fc41e77509369e27bbc786651654796"


def main() -> None:
    port, engine_url, mode, notify_port = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    prod = mode == "production"
    client = inngest.Inngest(app_id="bench", is_production=prod, api_base_url=engine_url,
                             event_api_base_url=engine_url, signing_key=SIGNING_KEY if prod else None,
                             event_key=EVENT_KEY if prod else None, logger=logging.getLogger("bench"))
    ten_steps = w10_function(client, "bench/run", notify_port)

    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, [ten_steps])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop",
                http="httptools")


if __name__ == "__main__":
    main()
