"""The mnist-service web app. Imports run one way, top to bottom; importing it changes nothing.

__main__.py      `python -m app`: check the model, then uvicorn (imported by nothing)
main.py          create_app(settings, classifier) and the typed lifespan: wiring only
api/             the HTTP transport: /v1, /v2 (the Open Inference Protocol), probes, middleware, errors
cli/             `mnist-service`: predict (in-process through the data plane, or --url), serve, train
dataplane.py     the operations every transport calls: predict files, infer pixels, the model, reload
schemas.py       the /v1 answers' models, and their rendering (shared by /v1 and the command line)
metrics.py       the Prometheus metrics and what records them
engines/         the crash boundary: task kinds, the worker process, its supervision, the batcher
model/           the .keras reader, the numpy network, the classifier, the gate, hot reload
preprocessing/   pure: image bytes -> a 28x28 MNIST-form digit, in named steps
answers.py       what the model answers, as arrays (decided in the engines, rendered by the transports)
config.py        Settings, from MNIST_* environment variables (no image library)
contract.py      the model's name, input (28x28 -> 784 floats in [0, 1]) and output; the file hash
errors.py        ServiceError: one base error with a status and a code (rendered in api/errors.py)
logs.py          one JSON object (or one plain line) per log record
"""
