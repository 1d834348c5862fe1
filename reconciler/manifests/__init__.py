"""YAML manifests -> validated desired state, with source positions and `${VAR}` filling.

- `spec.py`: the manifest's shape (pydantic models, the API's limits, hints).
- `positioned.py`: files read safely, YAML composed and walked into values and positions.
- `variables.py`: `${VAR}` filling, refusing the reconciler's own credentials.
- `loader.py`: `load_manifests` (all problems at once) and `index_documents` (for promote).
"""

from reconciler.manifests.loader import IndexedDocument, index_documents, load_manifests
from reconciler.manifests.positioned import MAX_FILE_BYTES
from reconciler.manifests.spec import API_VERSION, KIND, ServiceManifest

__all__ = [
    "API_VERSION",
    "KIND",
    "MAX_FILE_BYTES",
    "IndexedDocument",
    "ServiceManifest",
    "index_documents",
    "load_manifests",
]
