from setuptools import find_packages, setup

setup(
    name="effspeech",
    version="0.1.0",
    description="Parameter-efficient tuning of self-supervised speech models inside S3PRL",
    python_requires=">=3.10",
    packages=find_packages(include=["effspeech", "effspeech.*", "upstream_adapters", "upstream_adapters.*"]),
    py_modules=["run_downstream"],
    include_package_data=True,
    package_data={"effspeech": ["assets/*"]},
    install_requires=[
        "torch>=2.1",
        "torchaudio>=2.1",
        "s3prl==0.4.18",
        "numpy",
        "pyyaml",
        "tqdm",
        "soundfile",
        "pandas",
        "editdistance",
        "scipy",
        "h5py",
        "tensorboardX",
        "transformers<5",
        "matplotlib",
        "librosa",  # imported by S3PRL's voxceleb1 and emotion recipes
    ],
    extras_require={
        "dev": ["pytest", "ruff", "peft"],  # peft: the benchmark's anchor row, exercised by the tests
        "bench": ["peft"],
    },
    entry_points={"console_scripts": ["effspeech=effspeech.cli:main"]},
)
