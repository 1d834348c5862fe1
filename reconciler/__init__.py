"""amigo-reconciler: a declarative GitOps reconciler for Amigo services."""

__version__ = "0.1.0"
