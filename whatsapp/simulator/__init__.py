"""A Graph API simulator and a customer's phone, for development, demos and tests.

Mounted at ``/simulator/`` only when ``settings.SIMULATOR_ENABLED`` (off in production).
``state.SIM`` holds everything in memory; ``views`` are async and never touch the database.
"""
