"""The model registry: versioned model packages with approvals, lineage and the one model loader."""

from forgeline.inference.loader import ModelSource, Predictor, load_model
from forgeline.registry.model_registry import ModelPackageDescription, Registry

__all__ = ["ModelPackageDescription", "ModelSource", "Predictor", "Registry", "load_model"]
