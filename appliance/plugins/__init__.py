"""Python plugins: the admin's own code, called at points of a call's life (pluggy hooks).

spec.py declares the hooks, manager.py loads plugins (entry points, the drop-in directory)
and calls them in isolation, checks.py validates what they return, builtin.py is the
appliance's own behaviour on the same hooks, and sites.py ties the hooks to the event bus.
"""

from appliance.plugins.spec import hookimpl

__all__ = ["hookimpl"]
