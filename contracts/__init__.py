"""Flywheel's contracts: the msgspec Structs shared by the server, plugins and SDKs.

A plugin or SDK needs nothing else from Flywheel besides `hookimpl`
(`from flywheel.server.plugin_api import hookimpl`). Rules that keep contracts stable:
separate Create / Read / Update shapes, new fields always get defaults, and a
field's type never changes.
"""
