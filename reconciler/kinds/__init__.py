"""One module per kind: its AWS calls, its AWS <-> spec mapping, its waits and its status.

`base.py` is the interface every kind implements; `polling.py` the batched, non-blocking wait
they share. The registry (reconciler/registry.py) lists the kind modules; nothing imports a
kind module by name but the registry.
"""
