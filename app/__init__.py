"""The mnist-service web app. Imports run one way, top to bottom; importing it changes nothing.

main.py          create_app(settings, classifier) and the lifespan: wiring only
cli/             `mnist-service`: predict (in-process over the engines, or --url), serve, train
config.py        Settings, from MNIST_* environment variables
contract.py      the model's name, input (28x28 -> 784 floats in [0, 1]) and output; the file hash
errors.py        ServiceError: one base error with a status and a code (pure; rendered in handlers.py)
preprocessing.py pure: image bytes -> a 28x28 MNIST-form digit, in named steps
inference.py     the .keras reader and the numpy forward pass behind Classifier (and its digit scorer)
engine.py        engines: the child processes that decode and evaluate batches (the crash boundary)
batching.py      the dynamic batcher that feeds the engines
service.py       uploads -> predictions, shared by /v1 and /v2 (no HTTP); swaps model versions whole
gate.py          the quality gate: a model's accuracy on the built-in sample (data/mnist-sample.npz)
reload.py        hot reload: polling MNIST_MODEL_PATH, SIGHUP, the load call; the repository index
policy.py        the URL policy: body cap, API keys, probe exemption, error shape, per route
multipart.py     a measured fast path for the common multipart upload, checked against Starlette's
handlers.py      errors rendered per protocol at the edge
middleware/      pure ASGI: limits, security, observability (request IDs, logs, metrics)
routes/          v1.py, health.py, demo.py, deps.py, openapi.py; v2/ (types.py, codec.py, routes.py, repository.py)
"""
