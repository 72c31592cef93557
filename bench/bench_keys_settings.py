"""Settings for bench/bench_keys.py only: the project's settings, plus one bare view.

The benchmark starts daphne with DJANGO_SETTINGS_MODULE=bench.bench_keys_settings, so the
bare view it compares against runs under the same process, middleware and database
configuration as the prekey API, without adding a benchmark endpoint to the project.
"""

from messenger.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bench_keys_urls"
