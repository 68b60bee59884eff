from setuptools import find_packages, setup

setup(
    name="effspeech",
    version="0.1.0",
    description="Parameter-efficient tuning of self-supervised speech models inside S3PRL",
    python_requires=">=3.10",
    packages=find_packages(include=["effspeech", "effspeech.*", "upstream_adapters", "downstream"]),
    py_modules=["run_downstream"],
    package_data={"effspeech": ["assets/*"], "downstream": ["*/config.yaml"]},
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
        "transformers>=4.57,<6",  # the hf_*_adapter upstreams (tested on 4.57 and 5.24); s3prl imports it too
        "safetensors",  # PEFT's adapter format (effspeech.peft_format)
        "matplotlib",
        "librosa",  # imported by S3PRL's voxceleb1 and emotion recipes
    ],
    extras_require={
        # peft: the benchmark's anchor row and the PEFT round-trip tests; setuptools: tests/test_wheel.py builds
        # the wheel without isolation
        "dev": ["pytest", "ruff", "peft", "setuptools>=70.1"],
        "bench": ["peft"],
        "peft": ["peft"],
    },
    entry_points={"console_scripts": ["effspeech=effspeech.tools.cli:main"]},
)
