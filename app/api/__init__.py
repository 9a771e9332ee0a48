"""The HTTP transport: routes, middleware and the one error renderer. Each route translates its wire
format and calls the data plane (app/dataplane.py), nothing below it.

deps.py         typed dependencies: the settings, the data plane once it serves (the one readiness check)
errors.py       the one error renderer: ServiceError and framework errors as JSON in the route's shape
policy.py       the URL policy: body cap, API keys, probe exemption, error shape, per route
middleware/     pure ASGI: limits, security, observability (request IDs, logs, metrics)
v1/             /v1/predict, /v1/predict/batch, /v1/model; the upload bodies and the multipart fast path
v2/             the Open Inference Protocol over REST: types, codec, routes, the model repository
health.py       /healthz, /readyz, /metrics
demo.py         the demo page; openapi.py: the error answers' OpenAPI descriptions
"""
