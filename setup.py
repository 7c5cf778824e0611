"""tfcdi: image understanding from deep compression without decoding (TF2 / Keras 3)."""

from setuptools import find_packages, setup

# Console scripts: every experiments/NAME.py binary is also `tfcdi-NAME`, with dashes for
# underscores (tfcdi-train-codec), and under that one name only.
_BINARIES = [
    "compress",
    "decompress",
    "train_codec",
    "encode_dataset",
    "train_classifier",
    "train_segmenter",
    "train_joint",
    "export",
    "classify",
    "reproduce",
    "benchmark",
    "import_codec",
]

setup(
    name="tfcdi",
    version="0.1.0",
    description=(
        "Learned image compression and classification / segmentation straight from the "
        "compressed representation (Torfason et al., ICLR 2018), in TensorFlow 2 / Keras 3."
    ),
    packages=find_packages(include=["tfcdi", "tfcdi.*", "experiments", "tools"]),
    # Shipped pretrained codecs (float16 weights + integer frequency tables).
    package_data={"tfcdi": ["pretrained/*.npz", "pretrained/*.json",
                            # shipped latent classifiers: one SavedModel folder each
                            "pretrained/classifiers/*/*", "pretrained/classifiers/*/variables/*",
                            "pretrained/classifiers/*/assets/*"]},
    include_package_data=True,
    python_requires=">=3.10,<3.14",
    install_requires=[
        # TF 2.21 is the stack this project targets; Keras 3 is its default Keras.
        "tensorflow>=2.21,<2.22",
        "keras>=3.10,<4",
        # TF 2.21 no longer depends on TensorBoard; tf.summary needs it for training logs.
        "tensorboard>=2.20,<3",
        "tensorflow-datasets>=4.9.7,<5",
        "tf-slim>=1.1,<2",
        "absl-py>=2.1,<3",
        "numpy>=1.26,<3",
        # Range coding of the .tfci payload; 0.5 is the version the tests pin bit-exactness on.
        "constriction>=0.4,<0.6",
        "pillow>=10,<14",
        # OpenJPEG binding for the JPEG 2000 baseline (imagecodecs ships its own libopenjp2).
        "imagecodecs>=2024.1.1",
        "matplotlib>=3.8,<4",
        "tqdm>=4.66,<5",
    ],
    extras_require={
        # tf-slim's layers need TF1 layer classes, which TF 2.21 keeps in tf-keras; only the
        # test that builds slim's own resnet_v1_50 graph needs them. pytest-xdist: the README's
        # test command runs two workers, one per core.
        "test": ["pytest>=8,<10", "pytest-xdist>=3.5,<4", "tf-keras>=2.21,<2.22"],
        # tfcdi-encode-dataset --beam. Beam pins protobuf<7 (TF 2.21 runs on 6.x as well), so
        # it goes in its own environment (BUILD_NOTES.md: Apache Beam).
        "beam": ["apache-beam>=2.65,<3"],
        # Mutation testing of the core modules (tools/mutation_score.py); not needed to run
        # or test the package.
        "mutation": ["cosmic-ray>=8.7,<9"],
    },
    entry_points={
        "console_scripts": [
            f"tfcdi-{name.replace('_', '-')}=experiments.{name}:run" for name in _BINARIES
        ],
    },
)
