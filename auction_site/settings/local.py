"""Developer settings: DEBUG on and a fixed insecure key, never for deployment."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="insecure-local-development-key")
