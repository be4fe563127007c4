"""Static files of the operators' console, served by hub.api.routes.console.

A package only so that setuptools ships index.html, console.js and console.css with the wheel
(package-data); no Python here.
"""
