"""The CRM core: customers, the hook bus and the machinery every plugin uses.

A plugin needs only this package's top level::

    from core import Manifest, hookimpl

Importing ``core`` stays cheap (no SQLAlchemy, no FastAPI) so that ``crm --help`` is fast.
"""

import pluggy

from core.manifest import Manifest

__version__ = "0.1.0"

#: Version of the public plugin API (hookspecs and the objects passed to hooks).
PLUGIN_API_VERSION = "1.0"

PROJECT_NAME = "crm"


class PluginApiDeprecationWarning(DeprecationWarning):
    """A plugin implements a hook, or a hook argument, that a later plugin API removes.

    Hookspecs being retired carry ``@hookspec(warn_on_impl=PluginApiDeprecationWarning(...))``
    (or ``warn_on_impl_args``) for at least one minor version of the plugin API before the next
    major version removes them; see docs/plugin-api.md.
    """


hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
hookspec = pluggy.HookspecMarker(PROJECT_NAME)

__all__ = [
    "PLUGIN_API_VERSION",
    "PROJECT_NAME",
    "Manifest",
    "PluginApiDeprecationWarning",
    "__version__",
    "hookimpl",
    "hookspec",
]
