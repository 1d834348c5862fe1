"""Open an `AmigoClient` from settings: the live API, or the in-process emulator.

The CLI calls this; it is the one place that decides where requests go.
Heavy imports (httpx, the emulator) happen here, lazily, not at CLI start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.api.client import AmigoClient
    from reconciler.api.config import ApiConfig
    from reconciler.emulator import Emulator


def open_client(
    settings: Mapping[str, str | None],
    *,
    emulator_seed: str | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> AmigoClient:
    """A client for the API the settings name (flags first, then AMIGO_* environment).

    With `emulator_seed` the emulator runs in-process from that seed file and
    no credentials are needed; the settings are then ignored but for the Mongo
    cluster name, sent to the emulator as to the API.
    """
    from reconciler.api.client import AmigoClient
    from reconciler.api.config import ApiConfig

    if emulator_seed is not None:
        from dataclasses import replace

        from reconciler.api.config import ENV_MONGO_CLUSTER_NAME
        from reconciler.emulator import Emulator

        emulator = Emulator.from_seed(emulator_seed)
        # The transport holds the emulator (its state lives there) as long as the client.
        # The cluster header is the one setting the emulator also gets (it records it).
        config = replace(
            emulator_config(emulator), mongo_cluster_name=settings.get(ENV_MONGO_CLUSTER_NAME)
        )
        return AmigoClient(config, transport=emulator.transport(), on_wait=on_wait)
    return AmigoClient(ApiConfig.from_env(settings), on_wait=on_wait)


def emulator_config(emulator: Emulator, base_url: str | None = None) -> ApiConfig:
    """Settings for a client of `emulator`: its throwaway credentials, in-process or at `base_url`.

    Read from `Emulator.credentials` like any AMIGO_* settings: the emulator knows
    nothing of the client (it is an independent reading of the API).
    """
    from reconciler.api.config import ApiConfig

    url = emulator.IN_PROCESS_BASE_URL if base_url is None else base_url
    return ApiConfig.from_env(emulator.credentials(url), env={})
