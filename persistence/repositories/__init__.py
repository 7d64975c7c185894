"""One repository per aggregate. Every module here is imported with the package, so
``repository_for`` finds each model's own repository without a list to keep."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
