"""Training: the loop, schedules, checkpoints and resume (the app side, open_clip_train style)."""

from clipflow.training.config import TrainConfig
from clipflow.training.loop import TrainOutputs, train
from clipflow.training.preemption import TrainingPreempted

__all__ = ["TrainConfig", "TrainOutputs", "TrainingPreempted", "train"]
