"""The HTTP floor: a FastAPI endpoint that reads the same multipart upload and returns a constant JSON.

`uvicorn bench.floor:app` - what the web stack alone costs; no decoding, no model.
"""

from __future__ import annotations

from fastapi import FastAPI, UploadFile

app = FastAPI()
ANSWER = {"digit": 7, "confidence": 0.99, "probabilities": [0.001] * 7 + [0.99] + [0.001] * 2}


@app.post("/v1/predict")
async def predict(file: UploadFile) -> dict[str, object]:
    await file.read()
    return ANSWER
