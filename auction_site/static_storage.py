"""Static files that work before and after `collectstatic` (spec §6).

Deployed, pages name their static files by the hashed names `collectstatic` records in its
manifest, and WhiteNoise serves them from STATIC_ROOT, compressed and cached for good. A
web process started before `collectstatic` ran (or after a file was added since) would
fail every page with "Missing staticfiles manifest entry". Here such a name keeps its
plain URL instead, which WhiteNoise serves from the source folders (WHITENOISE_USE_FINDERS),
and the process says once per file what is missing.
"""

import logging

from whitenoise.storage import (  # type: ignore[import-untyped]
    CompressedManifestStaticFilesStorage,
)

logger = logging.getLogger(__name__)


class ManifestOrPlainStaticFilesStorage(CompressedManifestStaticFilesStorage):  # type: ignore[misc]
    """WhiteNoise's compressed, hashed storage; a name not in the manifest stays plain."""

    _warned: set[str] = set()

    def stored_name(self, name: str) -> str:
        try:
            return str(super().stored_name(name))
        except ValueError:
            if name not in self._warned:
                self._warned.add(name)
                logger.warning(
                    "static file %s is not in the manifest: serving it from the source "
                    "folders (run `manage.py collectstatic --noinput` when deploying)",
                    name,
                )
            return name
