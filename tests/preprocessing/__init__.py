"""Tests of app/preprocessing/: each step, the PNG fast path, HEIC/HEIF and AVIF uploads."""
