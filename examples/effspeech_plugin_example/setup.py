from setuptools import setup

setup(
    name="effspeech-plugin-example",
    version="0.1.0",
    description="An example third-party adapter method for effspeech",
    packages=["effspeech_plugin_example"],
    install_requires=["effspeech"],
    entry_points={"effspeech.adapters": ["ffn_scale = effspeech_plugin_example:FfnScale"]},
)
