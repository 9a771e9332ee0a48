"""The engines: the crash boundary where every input is decoded, preprocessed and evaluated.

messages.py     what crosses the pipe: tasks one way, an Evaluation back
tasks/          the task kinds (classify-files, evaluate-pixels), each a module, registered in tasks/__init__.py
worker.py       the child process's loop: prepare the batch's tasks, evaluate the model once
process.py      ChildEngine (the child, its restart and retries) and ThreadEngine
batcher.py      the dynamic batcher on the event loop that feeds the engines
environment.py  the processes' thread and allocator settings
"""
