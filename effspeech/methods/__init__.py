"""The built-in adapter methods; importing this package registers them."""

from effspeech.methods import adapterbias, bitfit, cnn, houlsby, lora, prefix, prompt  # noqa: F401
