"""Augmentation of digit batches in the tf.data input pipeline (not in the model): random affine
transforms, elastic distortions (Simard et al. 2003) and the mixing in of bold-pen copies."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # TensorFlow is imported when the pipeline calls these, not when this module is imported
    import tensorflow as tf

# Ranges chosen to cover how real digits differ from MNIST's normalisation (slant, size, centring).
MAX_ROTATION_DEG = 12.0
MAX_SCALE_DELTA = 0.12
MAX_SHEAR = 0.2
MAX_SHIFT_PX = 2.5
# Elastic distortions: Simard et al. use sigma 4 and alpha 34 on 28x28 digits; a displacement field
# smoothed that much moves pixels by about a pixel, bending strokes the way hands do.
ELASTIC_ALPHA = 34.0
ELASTIC_SIGMA = 4.0


def random_affine(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """(B, 28, 28) float32 -> (B, 28, 28) float32, each image rotated, scaled, sheared and shifted.

    `seed` is a shape-(2,) int tensor for the stateless RNG, so a run is reproducible from its seed.
    """
    import tensorflow as tf

    batch = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=5)

    def uniform(i: int, limit: float) -> tf.Tensor:
        return tf.random.stateless_uniform([batch], seeds[i], -limit, limit)

    angle = uniform(0, math.radians(MAX_ROTATION_DEG))
    inv_scale = 1.0 / (1.0 + uniform(1, MAX_SCALE_DELTA))
    shear = uniform(2, MAX_SHEAR)
    tx, ty = uniform(3, MAX_SHIFT_PX), uniform(4, MAX_SHIFT_PX)

    # The transform maps output pixel (x, y) to the input pixel it samples: p_in = M p_out + b,
    # with M = rotation @ shear / scale, and b chosen so the centre moves by (tx, ty).
    cos, sin = tf.cos(angle), tf.sin(angle)
    m00, m01 = cos * inv_scale, (cos * shear - sin) * inv_scale
    m10, m11 = sin * inv_scale, (sin * shear + cos) * inv_scale
    c = 13.5
    b0 = c - m00 * (c + tx) - m01 * (c + ty)
    b1 = c - m10 * (c + tx) - m11 * (c + ty)
    zeros = tf.zeros_like(angle)
    transforms = tf.stack([m00, m01, b0, m10, m11, b1, zeros, zeros], axis=1)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=images[..., tf.newaxis],
        transforms=transforms,
        output_shape=tf.constant([28, 28]),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    return out[..., 0]


def use_some(images: tf.Tensor, others: tf.Tensor, share: float, seed: tf.Tensor) -> tf.Tensor:
    """Each image replaced by its counterpart in `others` with probability `share` (stateless RNG)."""
    import tensorflow as tf

    pick = tf.random.stateless_uniform([tf.shape(images)[0]], tf.cast(seed, tf.int64)) < share
    return tf.where(pick[:, tf.newaxis, tf.newaxis], others, images)


def gaussian_kernel(sigma: float) -> tf.Tensor:
    """(2r+1,) float32 normalised Gaussian, r = ceil(3 sigma)."""
    import tensorflow as tf

    radius = max(1, math.ceil(3 * sigma))
    x = tf.range(-radius, radius + 1, dtype=tf.float32)
    weights = tf.exp(-(x**2) / (2 * sigma**2))
    return weights / tf.reduce_sum(weights)


def elastic_distort(
    images: tf.Tensor, seed: tf.Tensor, alpha: float = ELASTIC_ALPHA, sigma: float = ELASTIC_SIGMA
) -> tf.Tensor:
    """(B, 28, 28) float32 -> (B, 28, 28) float32, each image resampled through its own random
    displacement field: uniform in [-1, 1] per pixel and axis, Gaussian-smoothed (sigma, in pixels),
    scaled by alpha (pixels), then bilinear sampling with zeros outside. alpha 0 is the identity.

    `seed` is a shape-(2,) int tensor for the stateless RNG, so a run is reproducible from its seed.
    """
    import tensorflow as tf

    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    field = tf.random.stateless_uniform(
        tf.stack([batch * 2, height, width, 1]), tf.cast(seed, tf.int64), -1.0, 1.0
    )  # (2B, H, W, 1): dy for every image, then dx
    kernel = gaussian_kernel(sigma)
    size = int(kernel.shape[0])
    field = tf.nn.conv2d(field, tf.reshape(kernel, (size, 1, 1, 1)), strides=1, padding="SAME")
    field = tf.nn.conv2d(field, tf.reshape(kernel, (1, size, 1, 1)), strides=1, padding="SAME")
    dy, dx = tf.split(alpha * field[..., 0], 2, axis=0)

    rows = tf.cast(tf.range(height), tf.float32)[tf.newaxis, :, tf.newaxis] + dy
    cols = tf.cast(tf.range(width), tf.float32)[tf.newaxis, tf.newaxis, :] + dx
    r0, c0 = tf.floor(rows), tf.floor(cols)
    fr, fc = rows - r0, cols - c0
    r0, c0 = tf.cast(r0, tf.int32), tf.cast(c0, tf.int32)
    # One pixel of zeros all round: neighbours outside the image read 0; further out, clamp onto that border.
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1]])
    flat = tf.reshape(padded, [batch, -1])

    def at(r: tf.Tensor, c: tf.Tensor) -> tf.Tensor:
        r = tf.clip_by_value(r + 1, 0, height + 1)
        c = tf.clip_by_value(c + 1, 0, width + 1)
        return tf.gather(flat, tf.reshape(r * (width + 2) + c, [batch, -1]), batch_dims=1)

    top = at(r0, c0) * tf.reshape(1 - fc, [batch, -1]) + at(r0, c0 + 1) * tf.reshape(fc, [batch, -1])
    bottom = at(r0 + 1, c0) * tf.reshape(1 - fc, [batch, -1]) + at(r0 + 1, c0 + 1) * tf.reshape(fc, [batch, -1])
    out = top * tf.reshape(1 - fr, [batch, -1]) + bottom * tf.reshape(fr, [batch, -1])
    return tf.reshape(out, shape)
