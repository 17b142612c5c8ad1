"""The model checkpoints of the vision graph: which network trains on which dataset, with which settings, and
what the book reached. ``config`` is the default (all of the offline data, the targets in the README);
``demo`` is what ``make run`` overrides to finish in about a minute."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from cnn_pipelines.vision.datasets.catalog import DatasetSpec
from cnn_pipelines.vision.models.architectures import alexnet_style, lenet5
from cnn_pipelines.vision.models.transfer import BackboneSpec
from cnn_pipelines.vision.models.training import TrainConfig


@dataclass(frozen=True)
class ModelSpec:
    name: str
    dataset: str                          # dataset asset it trains on
    build: Callable                       # (input_shape, num_classes) -> keras.Model
    config: TrainConfig
    demo: dict = field(default_factory=dict)
    title: str = ""
    book: str = ""                        # the book's result, for comparison
    target: float | None = None           # accuracy the default config must reach on this dataset


LENET = TrainConfig(epochs=30, batch_size=32, optimizer="adam", learning_rate=1e-3, patience=8)
# Half the book's filters and units (5.4M parameters): at a quarter (1.4M) the network underfit augmented
# Fashion-MNIST (training accuracy 0.90 = validation accuracy; 88.7 % on test after 15 epochs).
CIFAR_WIDTH_OFFLINE = 0.5


def model_specs(datasets: dict[str, DatasetSpec], online: bool) -> list[ModelSpec]:
    """LeNet-5 on every digit/clothing dataset this machine has; the CIFAR network on CIFAR-10 online, else on
    Fashion-MNIST as 32x32x3 (or MNIST digits where Fashion-MNIST is not installed), labelled as what it is."""
    # Offline, LeNet-5 sees 3,600 digits and overfits them (training accuracy 99.9 %, validation 95.5 %): it
    # gets notebook 03's remedy, random shifts of up to 10 %. 400 validation digits are too few to stop on
    # (one image = 0.25 %), so it runs the whole schedule.
    specs = [ModelSpec(
        "lenet5_mnist", "mnist", lenet5 if online else functools.partial(lenet5, shift=0.1),
        dataclasses.replace(LENET, patience=LENET.epochs), {"epochs": 3},
        "LeNet-5 (notebook 02) on MNIST digits",
        "98.97 % on the full MNIST test set", None if online else 0.97)]
    if "fashion_mnist" in datasets:
        specs.append(ModelSpec(
            "lenet5_fashion_mnist", "fashion_mnist", lenet5, dataclasses.replace(LENET, epochs=25),
            {"epochs": 1, "train_limit": 6000}, "LeNet-5 (notebook 02) on Fashion-MNIST clothing",
            "the book trains LeNet-5 on MNIST only", 0.89))
    if "fashion_mnist_0_4" in datasets:
        # The offline transfer chain's backbone. Demo: 2 epochs of all 27,000 training images (about 15 s).
        specs.append(ModelSpec(
            "lenet5_fashion_0_4", "fashion_mnist_0_4", lenet5, dataclasses.replace(LENET, epochs=10),
            {"epochs": 2}, "LeNet-5 (notebook 02) on five Fashion-MNIST classes: the backbone of the "
            "clothing transfer chain", "the book's transfer backbones are trained on ImageNet"))
    cifar_data = "cifar10" if online else ("fashion_mnist" if "fashion_mnist" in datasets else "mnist")
    width = 1.0 if online else CIFAR_WIDTH_OFFLINE
    specs.append(ModelSpec(
        "cifar_cnn", cifar_data, functools.partial(alexnet_style, width=width, augment=True),
        TrainConfig(epochs=30 if online else 20, batch_size=128, optimizer="adam", learning_rate=1e-3, patience=8,
                    image_size=32, channels=3),
        # Demo: 1 epoch of 6,000 images, 47 steps: 69 % on test in about 40 s. At 3,000 images (23 steps) the
        # network collapsed to two or three classes (11-19 % on test, 58 % on its own training batches).
        {"epochs": 1, "train_limit": 6000},
        f"AlexNet-style CNN with augmentation (notebook 03), width {width:g}, on {datasets[cifar_data].title}"
        + ("" if cifar_data == "cifar10" else " resized to 32x32x3 (not CIFAR-10)"),
        "76.23 % on CIFAR-10" if cifar_data == "cifar10" else
        "76.23 % on CIFAR-10, another dataset: not comparable",
        None if online else (0.91 if cifar_data == "fashion_mnist" else None)))
    return specs



@dataclass(frozen=True)
class TransferSpec:
    """One transfer chain: backbone -> bottleneck features -> head -> fine-tuned, plus the same network from
    scratch and the learning curve. Every asset of the chain carries ``name`` as its key prefix."""

    name: str
    backbone: BackboneSpec
    dataset: str                          # target dataset asset
    train_split: str                      # tfds split of labelled target images (its tail validates)
    test_split: str
    head: TrainConfig                     # on bottleneck features
    fine_tune: TrainConfig                # backbone's top block + head, low learning rate
    scratch: TrainConfig                  # the stacked network from random weights
    curve_sizes: tuple[int, ...]          # labelled target images per learning-curve point (above all = all)
    curve_min_steps: int                  # gradient steps at least, however few the images
    demo: dict = field(default_factory=dict)   # per asset: overrides for `make run`
    book: str = ""
    target: str = ""                      # what the default configuration must show, for the README/metadata
    curve_seeds: int = 3                  # each learning-curve point is the mean over this many seeds (subsets, weights)
    source: str = ""                      # what the backbone learned, for the learning curve's page

    @property
    def title(self) -> str:
        return f"{self.backbone.title} -> {self.dataset}"


# Offline: the AlexNet-style network that part 1 trains on 60,000 Fashion-MNIST images (model `cifar_cnn`),
# transferred to the 5,000 real MNIST digits. Clothing and handwriting share strokes and edges, not shapes: cut
# after its second block (3x3x128, flattened to 1,152 features) a head on 50 labelled digits reached 78.7 %
# on the test digits, cut after the last block (global-average pooled to 128) 46.8 %, below the same network
# from scratch (measured on this machine; README). The block fine-tuning unfreezes is that second block.
FASHION_BACKBONE = BackboneSpec(
    "fashion_mnist_cnn", "AlexNet-style CNN trained on Fashion-MNIST (model cifar_cnn), first two blocks",
    image_size=32, preprocess="unit", top_block="CONV2", checkpoint_of="cifar_cnn", last_layer="NORM2",
    pooling="flatten", scratch=functools.partial(alexnet_style, width=CIFAR_WIDTH_OFFLINE, augment=False))
VGG16 = BackboneSpec("vgg16", "VGG16 (ImageNet weights)", image_size=160, preprocess="vgg16",
                     top_block="block5_conv1", application="VGG16")
DENSENET201 = BackboneSpec("densenet201", "DenseNet201 (ImageNet weights)", image_size=64, preprocess="densenet",
                           top_block="conv5_block32_0_bn", application="DenseNet201")

# Offline: LeNet-5 trained on Fashion-MNIST classes 0-4 (model lenet5_fashion_0_4), transferred to classes 5-9.
# Same kind of image, no class in common. Cut after its second block (POOL2, 9x9x16 = 1,296 features flattened):
# measured with benchmarks/transfer.py, lower layers transferred better than CONV3's (83.9 vs 80.8 % at 50 labels).
CLOTHING_BACKBONE = BackboneSpec(
    "fashion_0_4_lenet5", "LeNet-5 trained on Fashion-MNIST classes 0-4 (model lenet5_fashion_0_4), up to POOL2",
    image_size=28, preprocess="unit", top_block="CONV2", checkpoint_of="lenet5_fashion_0_4", last_layer="POOL2",
    pooling="flatten", scratch=lenet5, channels=1)

HEAD = TrainConfig(epochs=40, batch_size=64, learning_rate=1e-3, patience=10)
FINE_TUNE = TrainConfig(epochs=10, batch_size=32, learning_rate=1e-4, patience=4)
SCRATCH = TrainConfig(epochs=20, batch_size=64, learning_rate=1e-3, patience=8)
TRANSFER_DEMO = {"head": {"epochs": 5}, "fine_tuned": {"epochs": 1}, "from_scratch": {"epochs": 1},
                 # two of the curve's points, each trained as the full curve trains it (at least 200 gradient
                 # steps): with 10 steps scratch stayed near 24 % at both sizes, which read as "scratch cannot learn"
                 "learning_curve": {"sizes": [100, 500], "min_steps": 200, "epochs": 1, "seeds": 1}}


def transfer_specs(datasets: dict[str, DatasetSpec], online: bool) -> list[TransferSpec]:
    """Online: the book's VGG16 on cats vs dogs (notebooks 09/10) and DenseNet201 on EuroSAT (notebook 11).
    Offline: LeNet-5 from five Fashion-MNIST classes to the other five, and the AlexNet-style network from all of
    Fashion-MNIST to the MNIST digits; none without Fashion-MNIST (a backbone trained on the target's own
    digits would show nothing)."""
    if online:
        return [
            TransferSpec("vgg16_cats_vs_dogs", VGG16, "cats_vs_dogs", "train[:80%]", "train[80%:]", HEAD,
                         FINE_TUNE, dataclasses.replace(SCRATCH, epochs=30), (50, 100, 200, 500, 1000, 5000, 10**9),
                         200, TRANSFER_DEMO, "notebook 09/10: VGG16 bottleneck features and fine-tuning"),
            TransferSpec("densenet201_eurosat", DENSENET201, "eurosat", "train[:80%]", "train[80%:]", HEAD,
                         FINE_TUNE, dataclasses.replace(SCRATCH, epochs=30), (50, 100, 200, 500, 1000, 5000, 10**9),
                         200, TRANSFER_DEMO, "notebook 11: DenseNet201 on EuroSAT RGB, 97.96 % test accuracy"),
        ]
    chains = []
    if "fashion_mnist_5_9" in datasets:
        chains.append(TransferSpec(
            "clothing_0_4_to_5_9", CLOTHING_BACKBONE, "fashion_mnist_5_9", "train", "test", HEAD, FINE_TUNE, SCRATCH,
            (50, 100, 200, 500, 1000, 10**9), 200, TRANSFER_DEMO,
            "notebooks 09/10 transfer ImageNet VGG16 features to cats vs dogs",
            "transfer ahead of scratch at small label counts",
            source="Fashion-MNIST classes 0-4: T-shirt/top, trouser, pullover, dress, coat"))
    if "fashion_mnist" in datasets:
        chains.append(TransferSpec(
            "fashion_to_mnist", FASHION_BACKBONE, "mnist", "train", "test", HEAD, FINE_TUNE, SCRATCH,
            (50, 100, 200, 500, 1000, 10**9), 200, TRANSFER_DEMO,
            "notebooks 09/10 transfer ImageNet VGG16 features to cats vs dogs",
            "the second offline chain: clothing features for handwritten digits, a pair where transfer is not "
            "expected to lead", source="all ten Fashion-MNIST classes, as 32x32x3"))
    return chains
