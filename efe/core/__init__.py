"""The base layer: program contracts, the plain-data codec, typed specs, configuration and shipped resources."""
