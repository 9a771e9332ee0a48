"""The tutorial baseline: PIL convert + resize, then `model.predict` on every request, as most guides do.

`uvicorn bench.tutorial:app` (MNIST_MODEL_PATH picks the model; default: the committed one).
"""

from __future__ import annotations

import io
import os

import keras
import numpy as np
from fastapi import FastAPI, UploadFile
from PIL import Image

app = FastAPI()
model = keras.saving.load_model(os.environ.get("MNIST_MODEL_PATH", "models/mnist-mlp.keras"), compile=False)


@app.post("/v1/predict")
async def predict(file: UploadFile) -> dict[str, object]:
    image = Image.open(io.BytesIO(await file.read())).convert("L").resize((28, 28))
    x = np.asarray(image, dtype=np.float32).reshape(1, 784) / 255.0
    probabilities = model.predict(x, verbose=0)[0]
    return {
        "digit": int(probabilities.argmax()),
        "confidence": float(probabilities.max()),
        "probabilities": probabilities.tolist(),
    }
