"""The model: read from its files, evaluated in numpy, gated, and reloaded while serving.

network.py      Dense layers, the forward pass, `Network` (the classifier and its digit scorer)
keras_file.py   the .keras reader (no TensorFlow), the start-up checks of the files, the Keras cross-check
classifier.py   `Classifier.load(path)`: the network with its metadata, sha256 and version
gate.py         the quality gate: a model's accuracy on the built-in sample
reload.py       hot reload: polling MNIST_MODEL_PATH, SIGHUP, the load call; the repository index
calibration.py  expected calibration error and reliability (training and evaluation)
reading_calibration.py  /v1/read's confidence: a logistic model of "the reading is right", beside the model
"""
