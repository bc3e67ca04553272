"""Operations: what a running agentcmd tells the outside (docs/running.md "Operations").

* ``appmetrics``: the app server's Prometheus metrics (agent tokens and cost);
  the engine's are ``agentcmd.engine.metrics``;
* ``runlog``: the run and step ids on every log line about a run (JSON logs);
* ``tracing``: OpenTelemetry spans over OTLP, with the optional ``otel`` extra.
"""
