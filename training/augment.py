"""Random affine augmentation of digit batches, done in the tf.data input pipeline (not in the model)."""

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
