"""Ready-made image classifiers: ``LeNet5`` and a small ``ResNet`` of ``BasicBlock``s.

Both take NCHW images (MNIST-style 28x28, or 32x32) and return logits (N, num_classes).
Parameter names follow torchvision's conventions where it has the same layer (``conv1``,
``bn1``, ``layer1.0.downsample.0``, ``fc``), so state dicts are easy to compare.
"""

from __future__ import annotations

from collections import OrderedDict

from nnx.nn import functional as F
from nnx.nn import init
from nnx.nn.modules import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    Module,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
)

__all__ = ["BasicBlock", "LeNet5", "ResNet"]

_ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}
_POOLING = {"max": MaxPool2d, "avg": AvgPool2d}


class LeNet5(Module):
    """LeCun's LeNet-5 in its usual modern form:

        conv 5x5 (6) -> act -> pool 2 -> conv 5x5 (16) -> act -> pool 2 -> flatten
        -> linear 400-120 -> act -> linear 120-84 -> act -> linear 84-num_classes

    ``input_size`` 28 (MNIST; the first convolution pads by 2) or 32 (the original, unpadded);
    either way the first convolution yields 28x28 maps, so the weights are the same shapes
    (61,706 parameters for one input channel and 10 classes). ``activation``: ``"relu"``,
    ``"tanh"`` or ``"sigmoid"``; ``pooling``: ``"max"`` or ``"avg"`` (2x2, stride 2). With ReLU
    each convolution or hidden linear layer and its activation run as one fused kernel call.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, activation: str = "relu",
                 pooling: str = "max", input_size: int = 28):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"LeNet5: activation must be one of {sorted(_ACTIVATIONS)}, got "
                             f"{activation!r}")
        if pooling not in _POOLING:
            raise ValueError(f"LeNet5: pooling must be one of {sorted(_POOLING)}, got "
                             f"{pooling!r}")
        if input_size not in (28, 32):
            raise ValueError(f"LeNet5: input_size must be 28 or 32, got {input_size!r}")
        self.input_size = input_size
        self.activation = activation
        self.conv1 = Conv2d(in_channels, 6, 5, padding=(32 - input_size) // 2)
        self.conv2 = Conv2d(6, 16, 5)
        self.act = _ACTIVATIONS[activation]()
        self.pool = _POOLING[pooling](2)
        self.flatten = Flatten()
        self.fc1 = Linear(16 * 5 * 5, 120)
        self.fc2 = Linear(120, 84)
        self.fc3 = Linear(84, num_classes)

    def _with_act(self, layer, x):
        # With ReLU, one kernel call for the layer and its activation.
        if self.activation == "relu":
            return layer.forward_relu(x)
        return self.act(layer(x))

    def forward(self, x):
        size = self.input_size
        if x.ndim != 4 or tuple(x.shape[2:]) != (size, size):
            raise ValueError(f"LeNet5: expected input (N, C, {size}, {size}), got shape "
                             f"{tuple(x.shape)} (input_size={size})")
        x = self.pool(self._with_act(self.conv1, x))
        x = self.pool(self._with_act(self.conv2, x))
        x = self.flatten(x)
        x = self._with_act(self.fc1, x)
        x = self._with_act(self.fc2, x)
        return self.fc3(x)

    def to_sequential(self) -> Sequential:
        """The same network as a ``Sequential`` of this model's own modules (conv1, act1, pool1,
        conv2, act2, pool2, flatten, fc1, act3, fc2, act4, fc3), so its state dict has the same
        keys; ``nnx.save_model`` writes it for ``nnx.load_model`` and the C++ runtime."""
        return Sequential(OrderedDict([
            ("conv1", self.conv1), ("act1", self.act), ("pool1", self.pool),
            ("conv2", self.conv2), ("act2", self.act), ("pool2", self.pool),
            ("flatten", self.flatten), ("fc1", self.fc1), ("act3", self.act),
            ("fc2", self.fc2), ("act4", self.act), ("fc3", self.fc3)]))


class BasicBlock(Module):
    """The two-convolution residual block of ResNet-18/34:

        out = relu(bn2(conv3x3(relu(bn1(conv3x3(x, stride))))) + shortcut(x))

    The shortcut is the identity when shape is kept, else (``stride != 1`` or ``in_planes !=
    planes``) ``downsample``: a 1x1 convolution with that stride followed by batch norm.
    Convolutions have no bias (the batch norm after each supplies it)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = BatchNorm2d(planes)
        self.conv2 = Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            self.downsample = Sequential(Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                         BatchNorm2d(planes))
        else:
            self.downsample = None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class ResNet(Module):
    """A small residual network for 28x28 or 32x32 images (any size >= 4, in fact):

        conv3x3 (widths[0]) -> bn -> relu -> stage 1 .. stage k -> global average pool -> fc

    Stage i holds ``blocks[i]`` ``BasicBlock``s of ``widths[i]`` channels; every stage after
    the first halves the resolution in its first block. The defaults give the CIFAR-style
    ResNet-14 (3 stages of 2 blocks, 16/32/64 channels, about 175k parameters), which trains
    on Fashion-MNIST in minutes on two cores. Convolutions are initialised as torchvision's
    (Kaiming normal, fan_out, ReLU gain); batch norms with weight 1, bias 0.
    """

    def __init__(self, blocks=(2, 2, 2), widths=(16, 32, 64), num_classes: int = 10,
                 in_channels: int = 1):
        super().__init__()
        blocks, widths = tuple(blocks), tuple(widths)
        if not blocks or len(blocks) != len(widths) or min(blocks) < 1 or min(widths) < 1:
            raise ValueError(f"ResNet: blocks and widths must be non-empty sequences of "
                             f"positive ints of the same length, got {blocks} and {widths}")
        self.conv1 = Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = BatchNorm2d(widths[0])
        self.relu = ReLU()
        in_planes = widths[0]
        for i, (count, planes) in enumerate(zip(blocks, widths)):
            stride = 1 if i == 0 else 2
            layers = []
            for j in range(count):
                layers.append(BasicBlock(in_planes, planes, stride if j == 0 else 1))
                in_planes = planes
            self.add_module(f"layer{i + 1}", Sequential(*layers))
        self.num_stages = len(blocks)
        self.avgpool = AdaptiveAvgPool2d(1)
        self.flatten = Flatten()
        self.fc = Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, Conv2d):
                init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(self.flatten(self.avgpool(x)))

