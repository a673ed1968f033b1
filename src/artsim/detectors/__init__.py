"""Detectors that find things inside a painting (faces: `artsim.detectors.faces`)."""
