"""`mnist-service`, the command line: the digits (or whole numbers) in image files, folders and globs
(in-process on every core, or with a running service), and the server and the training run.

commands.py  the Typer app: predict, read, serve, train; exit statuses
jobs.py      what predict and read ask of each file: the batch route, its answers' field, the columns
files.py     the files that paths, folders and globs name
local.py     predict and read in-process: the server's batcher and engine processes, without the server
remote.py    predict and read --url: httpx, concurrent batch requests, retries on 503
outcomes.py  each file's answer or refusal, in order, as a table, JSON lines or CSV; the progress bar
"""

from app.cli.commands import cli, main

__all__ = ["cli", "main"]
