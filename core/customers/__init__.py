"""Customers: the core's one business object (IDIC "Identify").

``models`` holds the tables, ``service`` creating and changing customers, ``identify`` lookup,
duplicates and merge, ``importer`` and ``exporter`` the streaming CSV paths, ``api`` the REST
routes and ``commands`` the ``crm customers`` commands.
"""
