"""The built-in modules. Each is a plugin registered through the ``crm.plugins`` entry point
group, with exactly the API a third-party plugin has."""
