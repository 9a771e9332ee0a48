"""Offline training of the MNIST MLP served by app/."""
