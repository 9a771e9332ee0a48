"""Knowledge distillation (Hinton et al. 2015): the MLP student learns from the teacher's softened outputs
together with the labels.

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(labels, softmax(student))

The student trains on logits (its last Dense layer linear); the serving copy adds the softmax. The
teacher's logits are computed on the fly, on the same augmented batch the student sees. A row of the
targets that is uniform (an outlier-exposure negative, training/negatives.py) gets a uniform soft
target too, whatever the teacher says about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras
    import tensorflow as tf


@dataclass(frozen=True)
class Distillation:
    """The distillation's temperature and the weight of its soft term."""

    temperature: float = 4.0
    alpha: float = 0.7

    def hyperparameters(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "alpha": self.alpha}


def distillation_loss(
    targets: tf.Tensor,
    student_logits: tf.Tensor,
    teacher_logits: tf.Tensor,
    temperature: float,
    alpha: float,
    label_smoothing: float = 0.0,
) -> tf.Tensor:
    """Per-example loss, (B,) float32, from (B, 10) targets (one-hot, or uniform for a negative), student
    and teacher logits. A uniform target row replaces the teacher's soft target by the uniform one."""
    import tensorflow as tf

    classes = tf.cast(tf.shape(targets)[-1], tf.float32)
    negative = tf.reduce_max(targets, axis=-1, keepdims=True) < 0.5
    soft = tf.where(negative, tf.ones_like(targets) / classes, tf.nn.softmax(teacher_logits / temperature))
    log_student_t = tf.nn.log_softmax(student_logits / temperature)
    kl = tf.reduce_sum(soft * (tf.math.log(tf.maximum(soft, 1e-12)) - log_student_t), axis=-1)
    smoothed = targets * (1 - label_smoothing) + label_smoothing / classes
    ce = -tf.reduce_sum(smoothed * tf.nn.log_softmax(student_logits), axis=-1)
    return alpha * temperature**2 * kl + (1 - alpha) * ce


def make_distiller(
    student: keras.Model, teacher: keras.Model, distillation: Distillation, label_smoothing: float
) -> keras.Model:
    """A keras.Model whose call is the student's (logits) and whose loss is distillation_loss against
    the frozen teacher, evaluated on the same batch."""
    import keras
    import tensorflow as tf

    teacher.trainable = False

    class Distiller(keras.Model):
        def __init__(self) -> None:
            super().__init__(name=f"{student.name}_distiller")
            self.student = student
            self.teacher = teacher

        def call(self, x: Any, training: bool | None = None) -> Any:
            return self.student(x, training=training)

        def compute_loss(
            self, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None, training: bool = True
        ) -> Any:
            teacher_logits = tf.stop_gradient(self.teacher(x, training=False))
            per_example = distillation_loss(
                y, y_pred, teacher_logits, distillation.temperature, distillation.alpha, label_smoothing
            )
            loss = tf.reduce_mean(per_example)
            for extra in self.losses:  # regularisation terms, if any
                loss += extra
            return loss

    return Distiller()
